//! The example service's data shapes over its history, as the seed describes
//! them: how each feature's option and result JSON spelled file references
//! in each era, and which URL styles its rows used for the same objects.
//!
//! Eras follow the client tables: `client_old` rows are the oldest (a lone
//! URL in a per-feature legacy field, S3 or CloudFront), `client_temp` rows
//! the middle era (`bucket` + `key` + a CloudFront or S3 `url`), and
//! `client` rows the current one (`inputFileList`, result `fileList`, with
//! a few stragglers in older shapes).

use serde_json::{Value, json};

use super::features::{Feature, Kind};
use crate::references::ObjectRef;
use crate::references::percent::encode_key;

pub const INPUTS_BUCKET: &str = "lethe-example-inputs";
pub const RESULTS_BUCKET: &str = "lethe-example-results";
/// CloudFront in front of the results bucket.
pub const RESULTS_CDN: &str = "d1example.cloudfront.net";
/// CloudFront in front of the inputs bucket.
pub const INPUTS_CDN: &str = "d2inputs.cloudfront.net";
/// Sample inputs every member may pick: shared, protected, never deleted.
pub const SHARED_SAMPLE_KEY: &str = "shared/samples/고양이 sample.png";
/// Style presets: shared, protected.
pub const STYLE_PRESET_KEYS: [&str; 3] = [
    "shared/styles/watercolour.png",
    "shared/styles/oil paint.png",
    "shared/styles/픽셀.png",
];
/// An exact protected key outside the shared prefix.
pub const DEFAULT_AVATAR_KEY: &str = "presets/default-avatar.png";

/// Which era's shapes a row uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Old,
    Middle,
    Current,
}

/// One generated request: its JSON and the objects behind it.
#[derive(Debug, Clone)]
pub struct RequestData {
    pub feature_type: &'static str,
    /// NULL for the oldest rows, whose options are JSON text in `legacy_option`.
    pub option: Option<Value>,
    pub legacy_option: Option<String>,
    pub result: Value,
    /// Objects this request created: uploaded, and erased with the member.
    pub owned: Vec<ObjectRef>,
    /// JSON documents to upload with these bodies (PDF extraction results);
    /// they are also in `owned`.
    pub documents: Vec<(ObjectRef, Vec<u8>)>,
    /// Shared objects it references (retained).
    pub shared: Vec<ObjectRef>,
}

pub fn object(bucket: &str, key: impl Into<String>) -> ObjectRef {
    ObjectRef {
        bucket: bucket.to_owned(),
        key: key.into(),
    }
}

/// URL spellings of one object, as different generations of the service wrote them.
pub fn virtual_hosted(o: &ObjectRef) -> String {
    format!(
        "https://{}.s3.ap-northeast-2.amazonaws.com/{}",
        o.bucket,
        encode_key(&o.key)
    )
}

pub fn path_style(o: &ObjectRef) -> String {
    format!(
        "https://s3.ap-northeast-2.amazonaws.com/{}/{}",
        o.bucket,
        encode_key(&o.key)
    )
}

pub fn legacy_global(o: &ObjectRef) -> String {
    format!(
        "https://{}.s3.amazonaws.com/{}",
        o.bucket,
        encode_key(&o.key)
    )
}

pub fn cloudfront(o: &ObjectRef) -> String {
    let domain = if o.bucket == RESULTS_BUCKET {
        RESULTS_CDN
    } else {
        INPUTS_CDN
    };
    format!("https://{domain}/{}", encode_key(&o.key))
}

/// A URL copied from the S3 console: spaces written as `+`.
pub fn console_copied(o: &ObjectRef) -> String {
    virtual_hosted(o).replace("%20", "+")
}

/// An S3 URL in one of the styles the service used, varying with `n`.
fn s3_url(o: &ObjectRef, n: usize) -> String {
    match n % 3 {
        0 => virtual_hosted(o),
        1 => path_style(o),
        _ => legacy_global(o),
    }
}

/// The data of request `n` (of `requests`) of `member`; a PDF extraction
/// yields 1,000 images if it is the member's first and the member has at
/// least 5,000 requests ([`pdf_images`]).
pub fn request(
    member: &str,
    n: usize,
    requests: usize,
    feature: &Feature,
    era: Era,
) -> RequestData {
    let large_pdf = feature.kind == Kind::Pdf
        && pdf_images(n, requests, n == first_pdf_index(requests)) == LARGE_PDF_IMAGES;
    request_with_pdf(member, n, feature, era, large_pdf)
}

/// Images in a large PDF extraction (the seed: "up to 1,000 per PDF").
pub const LARGE_PDF_IMAGES: usize = 1_000;

/// [`request`], with the caller deciding whether a PDF extraction is a
/// large one ([`LARGE_PDF_IMAGES`] images); other features ignore it.
pub fn request_with_pdf(
    member: &str,
    n: usize,
    feature: &Feature,
    era: Era,
    large_pdf: bool,
) -> RequestData {
    let base = format!("{member}/{n:06}");
    let mut data = RequestData {
        feature_type: feature.feature_type,
        option: None,
        legacy_option: None,
        result: json!({}),
        owned: Vec::new(),
        documents: Vec::new(),
        shared: Vec::new(),
    };
    let option = option(&mut data, feature, era, n, &base);
    // Half the oldest rows predate the jsonb column: their options are text.
    if era == Era::Old && n % 2 == 1 {
        data.legacy_option = Some(option.to_string());
    } else {
        data.option = Some(option);
    }
    data.result = if feature.kind == Kind::Pdf {
        pdf_result(&mut data, era, n, large_pdf, &base)
    } else {
        result(&mut data, feature, era, n, &base)
    };
    data
}

/// The inputs of a request: (file, inputFileType, legacy field).
fn inputs(
    data: &mut RequestData,
    feature: &Feature,
    n: usize,
    base: &str,
) -> Vec<(ObjectRef, &'static str, &'static str)> {
    let own = |name: &str| object(INPUTS_BUCKET, format!("inputs/{base}/{name}"));
    let main = match (feature.feature_type, n % 7) {
        ("IMAGE_TO_IMAGE", 3) => object(INPUTS_BUCKET, SHARED_SAMPLE_KEY),
        ("FACE_RESTORE", _) => own("얼굴 사진.png"),
        ("PHOTO_ENHANCE", _) => own("before+after.png"),
        ("PDF_EXTRACT", _) => own("계약서 스캔.pdf"),
        _ => own("원본 이미지.png"),
    };
    let main_type = if feature.kind == Kind::Pdf {
        "pdf"
    } else {
        "originalImage"
    };
    let mut list = vec![(main, main_type, feature.legacy_field)];
    match feature.kind {
        Kind::ImageAndMask => list.push((own("mask.png"), "maskImage", "maskImageUrl")),
        Kind::ImageAndPreset => list.push((
            object(
                INPUTS_BUCKET,
                STYLE_PRESET_KEYS[n % STYLE_PRESET_KEYS.len()],
            ),
            "styleImage",
            "styleImageUrl",
        )),
        Kind::Selfies => {
            for i in 1..3 {
                list.push((own(&format!("selfie-{i}.jpg")), "selfie", "extraImageUrls"));
            }
        }
        _ => {}
    }
    for (file, _, _) in &list {
        if is_shared(file) {
            data.shared.push(file.clone());
        } else {
            data.owned.push(file.clone());
        }
    }
    list
}

fn is_shared(o: &ObjectRef) -> bool {
    o.key.starts_with("shared/") || o.key == DEFAULT_AVATAR_KEY
}

fn option(data: &mut RequestData, feature: &Feature, era: Era, n: usize, base: &str) -> Value {
    let mut option = json!({"width": 1024, "height": 1024, "seed": n});
    if feature.kind == Kind::TextOnly {
        if era == Era::Current {
            option["inputFileList"] = json!([]);
        }
        if feature.feature_type == "LOGO_DESIGN" && n.is_multiple_of(5) {
            // A default avatar pinned as a reference: protected by exact key.
            let preset = object(INPUTS_BUCKET, DEFAULT_AVATAR_KEY);
            option["imageUrl"] = json!(cloudfront(&preset));
            data.shared.push(preset);
        }
        return option;
    }
    let inputs = inputs(data, feature, n, base);
    match era {
        // A lone URL per file in per-feature legacy fields: S3 or CloudFront.
        Era::Old => {
            for (file, _, field) in &inputs {
                let url = match (feature.feature_type, n % 2) {
                    ("FACE_RESTORE", _) => console_copied(file),
                    (_, 0) => s3_url(file, n),
                    _ => cloudfront(file),
                };
                set_field(&mut option, field, url);
            }
        }
        // bucket + key + url (CloudFront or S3) at the top level.
        Era::Middle => {
            let (file, _, _) = &inputs[0];
            let url = if n.is_multiple_of(2) {
                cloudfront(file)
            } else {
                s3_url(file, n)
            };
            option["bucket"] = json!(file.bucket);
            option["key"] = json!(file.key);
            option["url"] = json!(url);
            for (file, _, field) in inputs.iter().skip(1) {
                set_field(&mut option, field, s3_url(file, n));
            }
        }
        // inputFileList; one in ten current rows still in the middle shape.
        Era::Current => {
            if n % 10 == 9 {
                return option_middle_straggler(option, &inputs, n);
            }
            let list: Vec<Value> = inputs
                .iter()
                .map(|(file, file_type, _)| {
                    json!({"bucket": file.bucket, "key": file.key, "url": cloudfront(file), "inputFileType": file_type})
                })
                .collect();
            option["inputFileList"] = json!(list);
        }
    }
    option
}

fn option_middle_straggler(
    mut option: Value,
    inputs: &[(ObjectRef, &str, &str)],
    n: usize,
) -> Value {
    let (file, _, _) = &inputs[0];
    option["bucket"] = json!(file.bucket);
    option["key"] = json!(file.key);
    option["url"] = json!(s3_url(file, n));
    for (file, _, field) in inputs.iter().skip(1) {
        set_field(&mut option, field, cloudfront(file));
    }
    option
}

/// Sets a legacy field; fields named `...Urls` are arrays that collect.
fn set_field(option: &mut Value, field: &str, url: String) {
    if field.ends_with("Urls") {
        match option.get_mut(field).and_then(Value::as_array_mut) {
            Some(list) => list.push(json!(url)),
            None => option[field] = json!([url]),
        }
    } else {
        option[field] = json!(url);
    }
}

fn result(data: &mut RequestData, feature: &Feature, era: Era, n: usize, base: &str) -> Value {
    let png = |i: usize| object(RESULTS_BUCKET, format!("results/{base}/result-{i}.png"));
    match era {
        // `url`, and for some a `webpUrl` beside it.
        Era::Old => {
            let first = png(0);
            let mut result = json!({"url": s3_url(&first, n)});
            data.owned.push(first);
            if n.is_multiple_of(4) {
                let webp = object(RESULTS_BUCKET, format!("results/{base}/result-0.webp"));
                result["webpUrl"] = json!(cloudfront(&webp));
                data.owned.push(webp);
            }
            result
        }
        // Only `url`, through CloudFront.
        Era::Middle => {
            let first = png(0);
            let result = json!({"url": cloudfront(&first)});
            data.owned.push(first);
            result
        }
        // `fileList`; items carry bucket + key in newer rows.
        Era::Current => {
            let list: Vec<Value> = (0..feature.images.max(1))
                .map(|i| {
                    let file = png(i);
                    let item = if n.is_multiple_of(2) {
                        json!({"url": cloudfront(&file), "type": "RESULT_IMAGE", "mimeType": "image/png"})
                    } else {
                        json!({"bucket": file.bucket, "key": file.key, "url": cloudfront(&file), "type": "RESULT_IMAGE"})
                    };
                    data.owned.push(file);
                    item
                })
                .collect();
            json!({"fileList": list})
        }
    }
}

/// Images in a member's PDF extractions: the first PDF of a member with at
/// least 5,000 requests yields 1,000 (the seed's case); others a handful.
pub fn pdf_images(n: usize, requests: usize, first_pdf: bool) -> usize {
    if first_pdf && requests >= 5_000 {
        LARGE_PDF_IMAGES
    } else {
        2 + n % 9
    }
}

fn pdf_result(data: &mut RequestData, era: Era, n: usize, large: bool, base: &str) -> Value {
    let document = object(RESULTS_BUCKET, format!("pdf/{base}/extract.json"));
    let images = if large {
        LARGE_PDF_IMAGES
    } else {
        pdf_images(n, 0, false)
    };
    let keys: Vec<String> = (0..images)
        .map(|i| format!("pdf/{base}/images/page-{:03}-{}.png", i / 4 + 1, i % 4))
        .collect();
    for key in &keys {
        data.owned.push(object(RESULTS_BUCKET, key.clone()));
    }
    // The extracted text is personal data too; it lives in S3, not the row.
    let body = json!({"fileKeyList": keys, "pageCount": images / 4 + 1, "texts": ["성명: 홍길동", "주소: ..."]});
    data.documents
        .push((document.clone(), serde_json::to_vec(&body).expect("json")));
    data.owned.push(document.clone());
    let mut result = json!({"pageCount": images / 4 + 1});
    match era {
        Era::Old => result["url"] = json!(s3_url(&document, n)),
        _ => {
            result["bucket"] = json!(document.bucket);
            result["key"] = json!(document.key);
            result["url"] = json!(cloudfront(&document));
        }
    }
    result
}

/// The request index of a member's first PDF extraction.
pub fn first_pdf_index(requests: usize) -> usize {
    (0..requests)
        .find(|n| super::features::feature_for(*n).kind == Kind::Pdf)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::example::features::{FEATURES, feature_for};
    use crate::references::{Resolution, Resolver};

    /// Every URL the generator writes resolves, through the shipped
    /// catalog, to an object the request owns or a shared one (the
    /// console-copied ones are ambiguous by design).
    #[test]
    fn generated_references_resolve_to_the_requests_objects() {
        let catalog =
            Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/example")).unwrap();
        let resolver = Resolver::new(&catalog.storage);
        for n in 0..400 {
            for era in [Era::Old, Era::Middle, Era::Current] {
                let data = request("member-00001", n, 400, feature_for(n), era);
                let mut found = Vec::new();
                let legacy: Option<Value> = data
                    .legacy_option
                    .as_deref()
                    .map(|t| serde_json::from_str(t).unwrap());
                for value in [data.option.as_ref(), legacy.as_ref(), Some(&data.result)]
                    .into_iter()
                    .flatten()
                {
                    collect_strings(value, &mut found);
                }
                for url in found.iter().filter(|s| s.starts_with("https://")) {
                    match resolver.resolve_url(url) {
                        Resolution::Object { object, .. } => {
                            assert!(data.owned.contains(&object), "{url}")
                        }
                        Resolution::Protected { object, .. } => {
                            assert!(data.shared.contains(&object), "{url}")
                        }
                        Resolution::Ambiguous { space, .. } => {
                            assert!(data.owned.contains(&space), "{url}")
                        }
                        other => panic!("{url}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn every_feature_and_era_references_its_files() {
        for feature in &FEATURES {
            for era in [Era::Old, Era::Middle, Era::Current] {
                let data = request("m", 4, 100, feature, era);
                assert!(!data.owned.is_empty(), "{} {era:?}", feature.feature_type);
            }
        }
    }

    fn collect_strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
            _ => {}
        }
    }
}
