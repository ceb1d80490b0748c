//! The example service's data shapes, old and new, as the seed describes
//! them: how each feature's option and result JSON looked over the years,
//! and the URL styles its rows use for the same objects.

use serde_json::{Value, json};

use crate::references::ObjectRef;
use crate::references::percent::encode_key;

pub const INPUTS_BUCKET: &str = "lethe-example-inputs";
pub const RESULTS_BUCKET: &str = "lethe-example-results";
pub const CLOUDFRONT_DOMAIN: &str = "d1example.cloudfront.net";
/// A sample input every member may use: shared, protected, never deleted.
pub const SHARED_SAMPLE_KEY: &str = "shared/samples/고양이 sample.png";

/// The example's feature types, and their table name stems.
pub const FEATURES: [(&str, &str); 3] = [
    ("TEXT_TO_IMAGE", "text_to_image"),
    ("IMAGE_TO_IMAGE", "image_to_image"),
    ("UPSCALE", "upscale"),
];

/// One generated request: its JSON and the objects it owns.
#[derive(Debug, Clone)]
pub struct RequestData {
    pub feature_type: &'static str,
    pub option: Value,
    pub result: Value,
    /// Objects this request created (to upload, and to be erased).
    pub owned: Vec<ObjectRef>,
    /// Whether it used the shared sample as input.
    pub uses_shared: bool,
}

/// URL spellings of one object, as different generations of the service wrote them.
pub fn virtual_hosted(object: &ObjectRef) -> String {
    format!(
        "https://{}.s3.ap-northeast-2.amazonaws.com/{}",
        object.bucket,
        encode_key(&object.key)
    )
}

pub fn path_style(object: &ObjectRef) -> String {
    format!(
        "https://s3.ap-northeast-2.amazonaws.com/{}/{}",
        object.bucket,
        encode_key(&object.key)
    )
}

pub fn cloudfront(object: &ObjectRef) -> String {
    assert_eq!(
        object.bucket, RESULTS_BUCKET,
        "only results are behind CloudFront"
    );
    format!("https://{CLOUDFRONT_DOMAIN}/{}", encode_key(&object.key))
}

fn object(bucket: &str, key: String) -> ObjectRef {
    ObjectRef {
        bucket: bucket.to_owned(),
        key,
    }
}

/// The data of request `n` of `member`; `legacy` picks the old shapes.
pub fn request(member: &str, n: usize, legacy: bool) -> RequestData {
    let (feature_type, _) = FEATURES[n % FEATURES.len()];
    let base = format!("{member}/{n:06}");
    let input = object(INPUTS_BUCKET, format!("inputs/{base}/원본 이미지.png"));
    let uses_shared = feature_type == "IMAGE_TO_IMAGE" && n % 7 == 3;
    let shared = object(INPUTS_BUCKET, SHARED_SAMPLE_KEY.to_owned());
    let mut owned = Vec::new();

    let option = match (feature_type, legacy) {
        ("TEXT_TO_IMAGE", true) => json!({"width": 1024, "height": 1024, "style": "photo"}),
        ("TEXT_TO_IMAGE", false) => json!({"width": 1024, "height": 768, "inputFileList": []}),
        ("IMAGE_TO_IMAGE", true) => {
            let source = if uses_shared { &shared } else { &input };
            json!({"inputImageUrl": virtual_hosted(source), "strength": 0.6})
        }
        ("IMAGE_TO_IMAGE", false) => {
            let source = if uses_shared { &shared } else { &input };
            json!({
                "inputFileList": [{
                    "bucket": source.bucket, "key": source.key,
                    "url": virtual_hosted(source), "inputFileType": "originalImage"
                }],
                "strength": 0.6
            })
        }
        ("UPSCALE", true) => json!({"imageUrl": path_style(&input), "scale": 2}),
        (_, _) => json!({
            "bucket": input.bucket, "key": input.key, "url": virtual_hosted(&input), "scale": 4
        }),
    };
    if feature_type != "TEXT_TO_IMAGE" && !uses_shared {
        owned.push(input);
    }

    // Most requests make one image; every fourth current one makes four.
    let images = if !legacy && n.is_multiple_of(4) { 4 } else { 1 };
    let results: Vec<ObjectRef> = (0..images)
        .map(|i| object(RESULTS_BUCKET, format!("results/{base}/result-{i}.png")))
        .collect();
    let result = if legacy {
        let png = &results[0];
        let webp = object(RESULTS_BUCKET, format!("results/{base}/result-0.webp"));
        let value = if feature_type == "UPSCALE" {
            json!({"url": cloudfront(png)})
        } else {
            json!({"url": virtual_hosted(png), "webpUrl": path_style(&webp)})
        };
        owned.push(png.clone());
        if feature_type != "UPSCALE" {
            owned.push(webp);
        }
        value
    } else {
        let list: Vec<Value> = results
            .iter()
            .map(|r| json!({"url": cloudfront(r), "type": "RESULT_IMAGE", "mimeType": "image/png"}))
            .collect();
        owned.extend(results);
        json!({"fileList": list})
    };
    RequestData {
        feature_type,
        option,
        result,
        owned,
        uses_shared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::references::{Resolution, Resolver};

    /// Every URL the generator writes resolves, through the shipped
    /// catalog, to an object the request owns (or the shared sample).
    #[test]
    fn generated_references_resolve_to_owned_objects() {
        let catalog =
            Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/example")).unwrap();
        let resolver = Resolver::new(&catalog.storage);
        for n in 0..40 {
            for legacy in [true, false] {
                let data = request("member-00001", n, legacy);
                let mut found = Vec::new();
                for value in [&data.option, &data.result] {
                    collect_strings(value, &mut found);
                }
                for url in found.iter().filter(|s| s.starts_with("https://")) {
                    match resolver.resolve_url(url) {
                        Resolution::Object { object, .. } => {
                            assert!(data.owned.contains(&object), "{url}")
                        }
                        Resolution::Protected { object, .. } => {
                            assert_eq!(object.key, SHARED_SAMPLE_KEY)
                        }
                        other => panic!("{url}: {other:?}"),
                    }
                }
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
