//! For random buckets, access points and random unicode keys, every URL form
//! built from (bucket, key) resolves back to exactly (bucket, key), and
//! every lookalike of those forms resolves to nothing, with a reason that
//! does not repeat the key.

use proptest::prelude::*;

use super::*;
use crate::references::percent::encode_key;

/// Valid S3 bucket names, dotted ones included: 3-63 characters of
/// lowercase letters, digits, `-` and `.`, starting and ending with a
/// letter or digit, no `..`, no `.-`/`-.`, not an IP address.
fn bucket() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}"
        .prop_filter("3 to 63 characters", |b| (3..=63).contains(&b.len()))
        .prop_filter("not an IP address", |b| {
            !b.split('.').all(|p| p.parse::<u8>().is_ok())
        })
}

/// Legacy (us-east-1, before 2018) bucket names: capitals and `_` allowed,
/// at least one capital. Only path-style URLs and `s3://` URIs reach them.
fn legacy_bucket() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.-]{1,20}[A-Za-z0-9]"
        .prop_filter("a capital", |b| b.bytes().any(|c| c.is_ascii_uppercase()))
}

/// Any non-empty unicode key, weighted towards the awkward: Korean,
/// spaces, `+`, `%`, `?`, `#`, and path-like `//` and `../`.
fn key() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9_.-]{1,8}",
        "[가-힣]{1,4}",
        Just(" ".to_owned()),
        Just("+".to_owned()),
        Just("%".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("../".to_owned()),
        any::<char>()
            .prop_filter("printable", |c| !c.is_control())
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 1..12).prop_map(|pieces| pieces.concat())
}

/// An access point name: lowercase letters, digits and `-`, ending in a
/// letter (so that no name ends in what looks like an account id).
fn access_point_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{1,20}[a-z]"
}

/// (region, partition, DNS suffix) in four partitions.
fn region() -> impl Strategy<Value = (&'static str, &'static str, &'static str)> {
    prop_oneof![
        Just(("us-west-2", "aws", "amazonaws.com")),
        Just(("ap-southeast-5", "aws", "amazonaws.com")),
        Just(("cn-north-1", "aws-cn", "amazonaws.com.cn")),
        Just(("us-gov-west-1", "aws-us-gov", "amazonaws.com")),
        Just(("eusc-de-east-1", "aws-eusc", "amazonaws.eu")),
    ]
}

/// The key an `s3://` URI holding `key` raw gives back: cut at the first
/// `?` or `#`; None when nothing is left.
fn s3_uri_key(key: &str) -> Option<String> {
    let cut = &key[..key.find(['?', '#']).unwrap_or(key.len())];
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// Every byte as `%XX`, as a client that encodes the whole path writes a
/// bucket.
fn encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn resolver_for(buckets: &[&str]) -> Resolver {
    let bucket = buckets[0].to_owned();
    Resolver::new(&Storage {
        buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
        cloudfront: vec![
            CloudFrontOrigin {
                domain: "d111.cloudfront.net".into(),
                bucket: bucket.clone(),
                origin_path: String::new(),
            },
            CloudFrontOrigin {
                domain: "cdn.example.com".into(),
                bucket,
                origin_path: "/media".into(),
            },
        ],
        protected: Vec::new(),
        ..Storage::default()
    })
}

const VPCE: &str = "vpce-1a2b3c4d-5e6f7g8h";

/// Every URL form for (bucket, key), with the key it should give back
/// (None: the form cannot carry this key, and the URL is foreign).
fn urls(bucket: &str, key: &str) -> Vec<(String, Option<String>)> {
    let encoded = encode_key(key);
    let mut urls: Vec<String> = vec![
        format!("https://{bucket}.s3.amazonaws.com/{encoded}"),
        format!("https://{bucket}.s3.ap-northeast-2.amazonaws.com/{encoded}"),
        format!("https://{bucket}.s3-ap-northeast-2.amazonaws.com/{encoded}"),
        format!("https://{bucket}.s3.dualstack.eu-west-1.amazonaws.com/{encoded}"),
        format!("https://{bucket}.s3-external-1.amazonaws.com/{encoded}"),
        format!("https://s3.amazonaws.com/{bucket}/{encoded}"),
        format!("https://s3.ap-northeast-2.amazonaws.com/{bucket}/{encoded}"),
        format!("https://s3-ap-northeast-2.amazonaws.com/{bucket}/{encoded}"),
        format!("https://s3.dualstack.us-east-1.amazonaws.com/{bucket}/{encoded}"),
        format!("http://{bucket}.s3.amazonaws.com/{encoded}"),
        format!(
            "https://{bucket}.s3.amazonaws.com/{encoded}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=ab12"
        ),
        format!("https://d111.cloudfront.net/{encoded}"),
        // FIPS, both addressings, with and without dualstack.
        format!("https://{bucket}.s3-fips.us-gov-west-1.amazonaws.com/{encoded}"),
        format!("https://{bucket}.s3-fips.dualstack.us-east-1.amazonaws.com/{encoded}"),
        format!("https://s3-fips.us-east-1.amazonaws.com/{bucket}/{encoded}"),
        format!("https://s3-fips.dualstack.us-east-1.amazonaws.com/{bucket}/{encoded}"),
        // Any region label, in any partition.
        format!("https://{bucket}.s3.cn-north-1.amazonaws.com.cn/{encoded}"),
        format!("https://{bucket}.s3.il-central-1.amazonaws.com/{encoded}"),
        format!("https://s3.mx-central-1.amazonaws.com/{bucket}/{encoded}"),
        format!("https://{bucket}.s3.eusc-de-east-1.amazonaws.eu/{encoded}"),
        format!("https://s3.us-isob-east-1.sc2s.sgov.gov/{bucket}/{encoded}"),
        // VPC interface endpoints, as the SDKs write them.
        format!("https://{bucket}.bucket.{VPCE}.s3.us-east-1.vpce.amazonaws.com/{encoded}"),
        format!("https://bucket.{VPCE}.s3.us-east-1.vpce.amazonaws.com/{bucket}/{encoded}"),
        format!("https://{VPCE}.s3.us-east-1.vpce.amazonaws.com/{bucket}/{encoded}"),
        // A percent-encoded bucket in a path-style URL.
        format!("https://s3.amazonaws.com/{}/{encoded}", encode_all(bucket)),
    ];
    // Directly in front of `vpce-`, a bucket whose last label is one of the
    // SDKs' literal prefixes is read as that prefix.
    let last_label = bucket.rsplit('.').next().unwrap_or(bucket);
    if !["bucket", "accesspoint", "control"].contains(&last_label) {
        urls.push(format!(
            "https://{bucket}.{VPCE}.s3.us-east-1.vpce.amazonaws.com/{encoded}"
        ));
    }
    let mut pairs: Vec<(String, Option<String>)> = urls
        .into_iter()
        .map(|u| (u, Some(key.to_owned())))
        .collect();
    // URIs hold the key raw, up to a query or fragment.
    for scheme in ["s3", "s3a", "S3N"] {
        pairs.push((format!("{scheme}://{bucket}/{key}"), s3_uri_key(key)));
    }
    let plain: String = key.replace(['?', '#'], "_");
    pairs.push((
        format!("s3://{bucket}/{plain}?versionId=3HL4kqt"),
        Some(plain.clone()),
    ));
    pairs.push((format!("s3a://{bucket}/{plain}#fragment"), Some(plain)));
    pairs.push((
        format!("https://cdn.example.com/{encoded}"),
        Some(format!("media/{key}")),
    ));
    pairs
}

/// Lookalikes of S3 URLs for (bucket, a path starting with a marker):
/// none is S3's.
fn lookalikes(bucket: &str, path: &str) -> Vec<String> {
    vec![
        format!("https://{bucket}.s3.amazonaws.com.evil.com/{path}"),
        format!("https://s3.amazonaws.com.evil.com/{bucket}/{path}"),
        format!("https://{bucket}.s3.amazonaws.com@evil.com/{path}"),
        format!("https://evil.com\\@{bucket}.s3.amazonaws.com/{path}"),
        format!("https://evil.com#@{bucket}.s3.amazonaws.com/{path}"),
        format!("https://{bucket}.s3.amazonaws.com%2Eevil.com/{path}"),
        format!("https://{bucket}.s3.us-east.amazonaws.com/{path}"),
        format!("https://{bucket}.s4.amazonaws.com/{path}"),
        format!("https://{bucket}.{VPCE}.s3.us-east-1.vpce.evil.com/{path}"),
        format!("https://evil.com/{bucket}/{path}"),
        format!("https://evil-s3-accesspoint.com/{bucket}/{path}"),
        format!("https://accesspoint.{VPCE}.s3.us-east-1.vpce.amazonaws.com/{path}"),
    ]
}

fn assert_foreign_without(
    resolver: &Resolver,
    url: &str,
    marker: &str,
) -> Result<(), TestCaseError> {
    match resolver.resolve_url(url) {
        Resolution::Foreign { reason } => {
            prop_assert!(!reason.contains(marker), "{} gave reason {:?}", url, reason);
        }
        other => prop_assert!(false, "{} resolved to {:?}", url, other),
    }
    Ok(())
}

/// The marker every lookalike's path starts with; a reason never repeats it.
const MARKER: &str = "member-7f3a";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_url_style_resolves_back_exactly(bucket in bucket(), key in key()) {
        let resolver = resolver_for(&[&bucket]);
        for (url, expected_key) in urls(&bucket, &key) {
            match (resolver.resolve_url(&url), expected_key) {
                (Resolution::Object { object, .. }, Some(expected_key)) => {
                    prop_assert_eq!(&object.bucket, &bucket, "{}", url);
                    prop_assert_eq!(&object.key, &expected_key, "{}", url);
                }
                (Resolution::Foreign { .. }, None) => {}
                (other, expected_key) => {
                    prop_assert!(false, "{} resolved to {:?}, expected {:?}", url, other, expected_key)
                }
            }
        }
        // As a {bucket, key} object, too.
        let value = serde_json::json!({"bucket": bucket, "key": key, "url": "https://elsewhere.example/x"});
        match resolver.resolve_value(&value) {
            Some(Resolution::Object { object, .. }) => prop_assert_eq!(object.key, key),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn lookalikes_of_s3_urls_are_foreign(bucket in bucket(), key in key()) {
        let resolver = resolver_for(&[&bucket]);
        let path = format!("{MARKER}/{}", encode_key(&key));
        for url in lookalikes(&bucket, &path) {
            assert_foreign_without(&resolver, &url, MARKER)?;
        }
    }

    #[test]
    fn a_path_style_bucket_keeps_its_case(bucket in legacy_bucket(), key in key()) {
        let resolver = resolver_for(&[&bucket]);
        let encoded = encode_key(&key);
        let mut urls = vec![
            (format!("https://s3.amazonaws.com/{bucket}/{encoded}"), Some(key.clone())),
            (format!("https://s3.us-east-1.amazonaws.com/{}/{encoded}", encode_all(&bucket)), Some(key.clone())),
            (format!("https://s3-fips.us-east-1.amazonaws.com/{bucket}/{encoded}"), Some(key.clone())),
            (format!("https://{VPCE}.s3.us-east-1.vpce.amazonaws.com/{bucket}/{encoded}"), Some(key.clone())),
        ];
        urls.push((format!("s3://{bucket}/{key}"), s3_uri_key(&key)));
        for (url, expected_key) in urls {
            match (resolver.resolve_url(&url), expected_key) {
                (Resolution::Object { object, .. }, Some(expected_key)) => {
                    prop_assert_eq!(&object.bucket, &bucket, "{}", url);
                    prop_assert_eq!(&object.key, &expected_key, "{}", url);
                }
                (Resolution::Foreign { .. }, None) => {}
                (other, _) => prop_assert!(false, "{} resolved to {:?}", url, other),
            }
        }
        // The same bucket in lowercase is another bucket.
        let lower = format!("https://s3.amazonaws.com/{}/{encoded}", bucket.to_lowercase());
        prop_assert!(matches!(resolver.resolve_url(&lower), Resolution::Foreign { .. }), "{}", lower);
    }

    #[test]
    fn every_access_point_form_resolves_to_its_arn(
        name in access_point_name(),
        account in "[0-9]{12}",
        (region, partition, suffix) in region(),
        key in key(),
    ) {
        let arn = format!("arn:{partition}:s3:{region}:{account}:accesspoint/{name}");
        let olap = format!("arn:{partition}:s3-object-lambda:{region}:{account}:accesspoint/{name}");
        let outposts = format!(
            "arn:{partition}:s3-outposts:{region}:{account}:outpost/op-01ac5d28a6a232904/accesspoint/{name}"
        );
        // The name is a bucket too: it must never be the one meant.
        let resolver = resolver_for(&[&arn, &olap, &outposts, &name]);
        let encoded = encode_key(&key);
        let label = format!("{name}-{account}");
        let mut urls = vec![
            (format!("https://{label}.s3-accesspoint.{region}.{suffix}/{encoded}"), &arn, Some(key.clone())),
            (format!("https://{label}.s3-accesspoint.dualstack.{region}.{suffix}/{encoded}"), &arn, Some(key.clone())),
            (format!("https://{label}.s3-accesspoint-fips.{region}.{suffix}/{encoded}"), &arn, Some(key.clone())),
            (format!("https://{label}.s3-accesspoint-fips.dualstack.{region}.{suffix}/{encoded}"), &arn, Some(key.clone())),
            (format!("https://{label}.accesspoint.{VPCE}.s3.{region}.vpce.{suffix}/{encoded}"), &arn, Some(key.clone())),
            (format!("https://{label}.s3-object-lambda.{region}.{suffix}/{encoded}"), &olap, Some(key.clone())),
            (format!("https://{label}.s3-object-lambda-fips.{region}.{suffix}/{encoded}"), &olap, Some(key.clone())),
            (format!("https://{label}.op-01ac5d28a6a232904.s3-outposts.{region}.{suffix}/{encoded}"), &outposts, Some(key.clone())),
        ];
        for (scheme, bucket) in [("s3", &arn), ("s3a", &arn), ("s3", &olap), ("s3", &outposts)] {
            urls.push((format!("{scheme}://{bucket}/{key}"), bucket, s3_uri_key(&key)));
        }
        let colon = format!("arn:{partition}:s3:{region}:{account}:accesspoint:{name}");
        urls.push((format!("s3://{colon}/{key}"), &arn, s3_uri_key(&key)));
        for (url, bucket, expected_key) in urls {
            match (resolver.resolve_url(&url), expected_key) {
                (Resolution::Object { object, .. }, Some(expected_key)) => {
                    prop_assert_eq!(&object.bucket, bucket, "{}", url);
                    prop_assert_eq!(&object.key, &expected_key, "{}", url);
                }
                (Resolution::Foreign { .. }, None) => {}
                (other, _) => prop_assert!(false, "{} resolved to {:?}", url, other),
            }
        }
        // Without the account id, with one digit short or one too many,
        // in the wrong partition's DNS suffix, without a region, behind a
        // lookalike suffix: foreign, never the access point or the bucket
        // called by its name.
        let other_suffix = if suffix == "amazonaws.com" { "amazonaws.com.cn" } else { "amazonaws.com" };
        let path = format!("{MARKER}/{encoded}");
        for url in [
            format!("https://{name}.s3-accesspoint.{region}.{suffix}/{path}"),
            format!("https://{name}-{}.s3-accesspoint.{region}.{suffix}/{path}", &account[..11]),
            format!("https://{label}0.s3-accesspoint.{region}.{suffix}/{path}"),
            format!("https://{label}.s3-accesspoint.{region}.{other_suffix}/{path}"),
            format!("https://{label}.s3-accesspoint.{suffix}/{path}"),
            format!("https://{label}.s3-accesspoint.{region}.{suffix}.evil.com/{path}"),
            format!("https://{label}-s3-accesspoint.{region}.{suffix}/{path}"),
            format!("https://x.{label}.s3-object-lambda.{region}.{suffix}/{path}"),
            format!("https://accesspoint.{VPCE}.s3.{region}.vpce.{suffix}/{path}"),
            format!("s3://arn:{partition}:s3:{region}:{}:accesspoint/{name}/{path}", &account[..11]),
        ] {
            assert_foreign_without(&resolver, &url, MARKER)?;
        }
    }

    #[test]
    fn directory_buckets_resolve_in_every_zonal_form(
        base in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        (zone, region) in prop_oneof![Just(("usw2-az1", "us-west-2")), Just(("use1-az4", "us-east-1")), Just(("apne1-az4", "ap-northeast-1"))],
        key in key(),
    ) {
        let bucket = format!("{base}--{zone}--x-s3");
        let resolver = resolver_for(&[&bucket]);
        let encoded = encode_key(&key);
        for url in [
            format!("https://{bucket}.s3express-{zone}.{region}.amazonaws.com/{encoded}"),
            format!("https://{bucket}.s3express-fips-{zone}.{region}.amazonaws.com/{encoded}"),
            format!("https://{bucket}.s3express-{zone}.dualstack.{region}.amazonaws.com/{encoded}"),
            format!("https://s3express-{zone}.{region}.amazonaws.com/{bucket}/{encoded}"),
        ] {
            match resolver.resolve_url(&url) {
                Resolution::Object { object, via } => {
                    prop_assert_eq!(&object.bucket, &bucket, "{}", url);
                    prop_assert_eq!(&object.key, &key, "{}", url);
                    prop_assert!(via.starts_with("S3 Express directory bucket"), "{}", via);
                }
                other => prop_assert!(false, "{} resolved to {:?}", url, other),
            }
        }
    }

    #[test]
    fn a_console_copied_plus_is_ambiguous_between_exactly_two_keys(bucket in bucket(), key in key()) {
        prop_assume!(key.contains(' '));
        let resolver = resolver_for(&[&bucket]);
        let console = format!("https://{bucket}.s3.amazonaws.com/{}", encode_key(&key).replace("%20", "+"));
        match resolver.resolve_url(&console) {
            Resolution::Ambiguous { plus, space, .. } => {
                prop_assert_eq!(&space.key, &key);
                prop_assert_eq!(plus.key, key.replace(' ', "+"));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
