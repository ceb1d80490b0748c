//! The example service's feature types: the seed's eighteen AI features and
//! its PDF extraction service, with what each takes as input, how its rows
//! spelled file references over the years, and how often members use it.
//! The catalog in `workflows/example/features/` describes the same tables
//! (a test keeps the two in step).

/// What a feature takes and makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A prompt only; makes images.
    TextOnly,
    /// One input image; makes images.
    Image,
    /// An input image and a mask (inpainting, outpainting).
    ImageAndMask,
    /// An input image and a shared style preset (never deleted).
    ImageAndPreset,
    /// Several selfies; makes four portraits.
    Selfies,
    /// A PDF; makes a JSON document listing the extracted images.
    Pdf,
}

/// One feature type.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// The client table's `type` value.
    pub feature_type: &'static str,
    /// The stem of its table names: `<stem>_feature`, `<stem>_task`.
    pub stem: &'static str,
    pub kind: Kind,
    /// The single field that held the input URL before `inputFileList`
    /// (the seed: some used `inputImageUrl`, some `imageUrl`, some `url`).
    pub legacy_field: &'static str,
    /// Relative share of a member's requests.
    pub weight: u32,
    /// Images made per request in the current era (the seed: some make four).
    pub images: usize,
}

const fn feature(
    feature_type: &'static str,
    stem: &'static str,
    kind: Kind,
    legacy_field: &'static str,
    weight: u32,
    images: usize,
) -> Feature {
    Feature {
        feature_type,
        stem,
        kind,
        legacy_field,
        weight,
        images,
    }
}

/// Every feature of the example service, PDF extraction last.
pub const FEATURES: [Feature; 19] = [
    feature(
        "TEXT_TO_IMAGE",
        "text_to_image",
        Kind::TextOnly,
        "url",
        240,
        1,
    ),
    feature(
        "IMAGE_TO_IMAGE",
        "image_to_image",
        Kind::Image,
        "inputImageUrl",
        120,
        1,
    ),
    feature("UPSCALE", "upscale", Kind::Image, "imageUrl", 80, 1),
    feature(
        "BACKGROUND_REMOVAL",
        "background_removal",
        Kind::Image,
        "url",
        80,
        1,
    ),
    feature(
        "INPAINTING",
        "inpainting",
        Kind::ImageAndMask,
        "inputImageUrl",
        40,
        1,
    ),
    feature(
        "OUTPAINTING",
        "outpainting",
        Kind::ImageAndMask,
        "imageUrl",
        30,
        1,
    ),
    feature(
        "STYLE_TRANSFER",
        "style_transfer",
        Kind::ImageAndPreset,
        "url",
        40,
        1,
    ),
    feature(
        "FACE_RESTORE",
        "face_restore",
        Kind::Image,
        "inputImageUrl",
        30,
        1,
    ),
    feature("COLORIZE", "colorize", Kind::Image, "imageUrl", 30, 1),
    feature(
        "SKETCH_TO_IMAGE",
        "sketch_to_image",
        Kind::Image,
        "url",
        30,
        1,
    ),
    feature(
        "IMAGE_VARIATION",
        "image_variation",
        Kind::Image,
        "inputImageUrl",
        40,
        4,
    ),
    feature("PORTRAIT", "portrait", Kind::Image, "imageUrl", 40, 4),
    feature("AVATAR", "avatar", Kind::Selfies, "url", 30, 4),
    feature(
        "PRODUCT_SHOT",
        "product_shot",
        Kind::Image,
        "inputImageUrl",
        30,
        1,
    ),
    feature("RELIGHT", "relight", Kind::Image, "imageUrl", 20, 1),
    feature("DEPTH_MAP", "depth_map", Kind::Image, "url", 20, 1),
    feature("LOGO_DESIGN", "logo_design", Kind::TextOnly, "url", 40, 4),
    feature(
        "PHOTO_ENHANCE",
        "photo_enhance",
        Kind::Image,
        "inputImageUrl",
        50,
        1,
    ),
    feature("PDF_EXTRACT", "pdf_extract", Kind::Pdf, "url", 6, 0),
];

/// The feature of a member's `n`-th request: a deterministic walk through
/// the weights, so every member has every feature in the same proportions.
pub fn feature_for(n: usize) -> &'static Feature {
    let total: u32 = FEATURES.iter().map(|f| f.weight).sum();
    // A stride coprime with the total spreads the features through a
    // member's history instead of in runs.
    let mut slot = ((n as u64 * 7919) % u64::from(total)) as u32;
    for feature in &FEATURES {
        if slot < feature.weight {
            return feature;
        }
        slot -= feature.weight;
    }
    &FEATURES[0]
}

pub fn by_type(feature_type: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.feature_type == feature_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_feature_appears_in_proportion() {
        let total: u32 = FEATURES.iter().map(|f| f.weight).sum();
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        for n in 0..total as usize {
            *seen.entry(feature_for(n).feature_type).or_default() += 1;
        }
        for feature in &FEATURES {
            assert_eq!(
                seen.get(feature.feature_type),
                Some(&feature.weight),
                "{}",
                feature.feature_type
            );
        }
    }

    #[test]
    fn the_catalog_has_a_file_per_feature_naming_its_tables() {
        let catalog = crate::catalog::Catalog::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/workflows/example"
        ))
        .unwrap();
        assert_eq!(catalog.features.len(), FEATURES.len());
        for feature in &FEATURES {
            let entry = catalog
                .feature_for_type(feature.feature_type)
                .unwrap_or_else(|| panic!("no catalog file for {}", feature.feature_type));
            assert_eq!(
                entry.spec.feature.table.to_string(),
                format!("{}_feature", feature.stem)
            );
            let task = entry
                .spec
                .tasks
                .first()
                .expect("every feature has a task table");
            assert_eq!(task.table.to_string(), format!("{}_task", feature.stem));
        }
    }
}
