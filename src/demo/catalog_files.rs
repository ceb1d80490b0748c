//! The example service's catalog, built into the binary, so that `lethe demo`
//! works wherever it runs and leaves the catalog it used in its folder for
//! the user to read. A test keeps this list in step with
//! `workflows/example/`.

/// (path inside the catalog directory, contents)
pub const FILES: [(&str, &str); 20] = [
    (
        "catalog.toml",
        include_str!("../../workflows/example/catalog.toml"),
    ),
    (
        "features/avatar.toml",
        include_str!("../../workflows/example/features/avatar.toml"),
    ),
    (
        "features/background_removal.toml",
        include_str!("../../workflows/example/features/background_removal.toml"),
    ),
    (
        "features/colorize.toml",
        include_str!("../../workflows/example/features/colorize.toml"),
    ),
    (
        "features/depth_map.toml",
        include_str!("../../workflows/example/features/depth_map.toml"),
    ),
    (
        "features/face_restore.toml",
        include_str!("../../workflows/example/features/face_restore.toml"),
    ),
    (
        "features/image_to_image.toml",
        include_str!("../../workflows/example/features/image_to_image.toml"),
    ),
    (
        "features/image_variation.toml",
        include_str!("../../workflows/example/features/image_variation.toml"),
    ),
    (
        "features/inpainting.toml",
        include_str!("../../workflows/example/features/inpainting.toml"),
    ),
    (
        "features/logo_design.toml",
        include_str!("../../workflows/example/features/logo_design.toml"),
    ),
    (
        "features/outpainting.toml",
        include_str!("../../workflows/example/features/outpainting.toml"),
    ),
    (
        "features/pdf_extract.toml",
        include_str!("../../workflows/example/features/pdf_extract.toml"),
    ),
    (
        "features/photo_enhance.toml",
        include_str!("../../workflows/example/features/photo_enhance.toml"),
    ),
    (
        "features/portrait.toml",
        include_str!("../../workflows/example/features/portrait.toml"),
    ),
    (
        "features/product_shot.toml",
        include_str!("../../workflows/example/features/product_shot.toml"),
    ),
    (
        "features/relight.toml",
        include_str!("../../workflows/example/features/relight.toml"),
    ),
    (
        "features/sketch_to_image.toml",
        include_str!("../../workflows/example/features/sketch_to_image.toml"),
    ),
    (
        "features/style_transfer.toml",
        include_str!("../../workflows/example/features/style_transfer.toml"),
    ),
    (
        "features/text_to_image.toml",
        include_str!("../../workflows/example/features/text_to_image.toml"),
    ),
    (
        "features/upscale.toml",
        include_str!("../../workflows/example/features/upscale.toml"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_catalog_is_the_example_catalog() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/example");
        let mut on_disk = vec!["catalog.toml".to_owned()];
        for entry in std::fs::read_dir(dir.join("features")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".toml") {
                on_disk.push(format!("features/{name}"));
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "add the new catalog file to src/demo/catalog_files.rs"
        );
        for (path, text) in super::FILES {
            assert_eq!(std::fs::read_to_string(dir.join(path)).unwrap(), text);
        }
    }
}
