//! Recognising the hosts Amazon S3 serves objects on, and where each puts
//! the bucket. The forms, by family (`<r>` is any region label, `<s>` a
//! partition's DNS suffix such as `amazonaws.com` or `amazonaws.com.cn`):
//!
//! - regular endpoints, virtual-hosted (`bucket.` in front) or path-style:
//!   `s3.<s>` (global), `s3.<r>`, `s3-<r>` (legacy), `s3.dualstack.<r>`,
//!   `s3-fips.<r>`, `s3-fips.dualstack.<r>`, `s3-fips-<r>` (legacy),
//!   `s3-external-1`, `s3-accelerate[.dualstack]`, website endpoints;
//! - S3 Express One Zone directory buckets on their zonal endpoints:
//!   `bucket--usw2-az1--x-s3.s3express[-fips]-usw2-az1[.dualstack].<r>`,
//!   or the bucket first in the path;
//! - access point hostnames, whose bucket is the access point's ARN (in the
//!   partition of the region, whose DNS suffix the host must end in):
//!   `<name>-<account>.s3-accesspoint[-fips][.dualstack].<r>`,
//!   `<name>-<account>.s3-object-lambda[-fips].<r>`,
//!   `<name>-<account>.<outpost id>.s3-outposts.<r>` (and an Outposts bucket
//!   alias, `<alias>--op-s3.<outpost id>.s3-outposts.<r>`);
//! - VPC interface endpoints, `vpce-<id>.s3.<r>.vpce.<s>` with the literal
//!   prefix the SDKs put in front: `bucket.` (path-style), `<bucket>.bucket.`
//!   (virtual-hosted), `<name>-<account>.accesspoint.` (access point), and
//!   `<bucket>.` directly (virtual-hosted);
//! - hosts that are S3's but say no bucket: a Multi-Region Access Point
//!   (no account id), a VPC endpoint's bare `accesspoint.` (no name), S3
//!   Control and S3 Express control endpoints (no objects).
//!
//! The rule this module keeps: a host is S3's only if it ends in one of the
//! partitions' DNS suffixes and its labels, read from the right, are one of
//! these forms; anything else (`s3.amazonaws.com.evil.com`,
//! `evil-s3-accesspoint.com`) is not. It says where the bucket is and names
//! the form; it never decides ownership and never reads the path.

use super::arn::{self, AccessPointKind, is_region};

/// Where an S3 host puts the bucket, and the form that matched, as
/// [`super::Resolution`]'s `via` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Host {
    /// The host names the bucket: its leading labels (lowercase: DNS is
    /// case-insensitive), or for an access point hostname the access
    /// point's ARN.
    VirtualHosted { bucket: String, form: String },
    /// The bucket is the first path segment.
    PathStyle { form: String },
    /// An S3 host that does not say which bucket it serves, and why.
    Unaddressable { form: String, reason: &'static str },
}

/// Recognises an Amazon S3 host (lowercase, without port); None for any
/// other host.
pub fn classify_host(host: &str) -> Option<S3Host> {
    // A fully qualified name's trailing dot names the same host.
    let host = host.strip_suffix('.').unwrap_or(host);
    let (labels, suffix) = arn::DNS_SUFFIXES.iter().find_map(|suffix| {
        let labels = host.strip_suffix(suffix)?.strip_suffix('.')?;
        Some((labels, *suffix))
    })?;
    let labels: Vec<&str> = labels.split('.').collect();
    if labels.iter().any(|label| label.is_empty()) {
        return None;
    }
    // Each family ends in labels no other family's does (`vpce`,
    // `s3-accesspoint`, `s3express-*`, `s3-global`), so the order only
    // matters within a family.
    vpc_endpoint(&labels, suffix)
        .or_else(|| access_point(&labels, suffix))
        .or_else(|| directory_bucket(&labels))
        .or_else(|| multi_region(&labels))
        .or_else(|| regular(&labels))
}

/// The regular endpoints, longest suffix first, so that
/// `bucket.s3.dualstack.eu-west-1` is not read as a bucket called
/// `bucket.s3.dualstack`, and `s3-fips-<r>`/`s3-website-<r>` are not read
/// as legacy `s3-<r>` with a region called `fips-<r>`.
fn regular(labels: &[&str]) -> Option<S3Host> {
    let (bucket, style) = match labels {
        [b @ .., "s3-fips", "dualstack", r] if is_region(r) => (b, "FIPS dualstack"),
        [b @ .., "s3-fips", r] if is_region(r) => (b, "FIPS"),
        [b @ .., "s3", "dualstack", r] if is_region(r) => (b, "dualstack"),
        [b @ .., "s3-accelerate", "dualstack"] => (b, "accelerate dualstack"),
        [b @ .., "s3", r] if is_region(r) => (b, "regional"),
        [b @ .., "s3-website", r] if is_region(r) => (b, "website"),
        [b @ .., l] if l.strip_prefix("s3-website-").is_some_and(is_region) => (b, "website"),
        [b @ .., l] if l.strip_prefix("s3-fips-").is_some_and(is_region) => (b, "FIPS legacy"),
        [b @ .., "s3-external-1"] => (b, "s3-external-1"),
        [b @ .., "s3-accelerate"] => (b, "accelerate"),
        [b @ .., l] if l.strip_prefix("s3-").is_some_and(is_region) => (b, "legacy regional"),
        [b @ .., "s3"] => (b, "global"),
        _ => return None,
    };
    Some(bucket_or_path(bucket, |addressing| {
        format!("S3 URL ({style}, {addressing})")
    }))
}

/// S3 Express One Zone: `<bucket>.s3express[-fips]-<zone id>[.dualstack].<r>`.
fn directory_bucket(labels: &[&str]) -> Option<S3Host> {
    let (bucket, endpoint, dualstack) = match labels {
        [b @ .., e, "dualstack", r] if is_region(r) => (b, *e, true),
        [b @ .., e, r] if is_region(r) => (b, *e, false),
        _ => return None,
    };
    let rest = endpoint.strip_prefix("s3express-")?;
    if rest == "control" || rest == "control-fips" {
        return Some(S3Host::Unaddressable {
            form: "S3 Express control endpoint".to_owned(),
            reason: "an S3 Express control endpoint serves bucket operations, not objects",
        });
    }
    let (fips, zone) = match rest.strip_prefix("fips-") {
        Some(zone) => (true, zone),
        None => (false, rest),
    };
    if !is_zone_id(zone) {
        return None;
    }
    let variant = match (fips, dualstack) {
        (false, false) => "zonal",
        (true, false) => "zonal FIPS",
        (false, true) => "zonal dualstack",
        (true, true) => "zonal FIPS dualstack",
    };
    Some(bucket_or_path(bucket, |addressing| {
        format!("S3 Express directory bucket ({variant}, {addressing})")
    }))
}

/// Access point, Object Lambda and S3 on Outposts hostnames.
fn access_point(labels: &[&str], suffix: &str) -> Option<S3Host> {
    let (prefix, kind, form, region) = match labels {
        [p @ .., "s3-accesspoint", r] => (p, AccessPointKind::Standard, "", *r),
        [p @ .., "s3-accesspoint", "dualstack", r] => {
            (p, AccessPointKind::Standard, " (dualstack)", *r)
        }
        [p @ .., "s3-accesspoint-fips", r] => (p, AccessPointKind::Standard, " (FIPS)", *r),
        [p @ .., "s3-accesspoint-fips", "dualstack", r] => {
            (p, AccessPointKind::Standard, " (FIPS dualstack)", *r)
        }
        [p @ .., "s3-object-lambda", r] => (p, AccessPointKind::ObjectLambda, "", *r),
        [p @ .., "s3-object-lambda-fips", r] => (p, AccessPointKind::ObjectLambda, " (FIPS)", *r),
        [p @ .., outpost, "s3-outposts", r] => return outposts(p, outpost, r, suffix),
        _ => return None,
    };
    if !is_region(region) {
        return None;
    }
    let family = match kind {
        AccessPointKind::ObjectLambda => "S3 Object Lambda access point hostname",
        _ => "S3 access point hostname",
    };
    Some(access_point_arn(
        prefix,
        &kind,
        region,
        suffix,
        format!("{family}{form}"),
    ))
}

/// `<name>-<account>.op-<id>.s3-outposts.<r>` is an access point;
/// `<alias>--op-s3.op-<id>.s3-outposts.<r>` (or `.ec2.`) a bucket alias,
/// which S3 on Outposts takes where a bucket name goes.
fn outposts(prefix: &[&str], outpost: &str, region: &str, suffix: &str) -> Option<S3Host> {
    if !is_region(region) || !(outpost == "ec2" || outpost.starts_with("op-")) {
        return None;
    }
    if let [alias] = prefix
        && alias.ends_with("--op-s3")
    {
        return Some(S3Host::VirtualHosted {
            bucket: (*alias).to_owned(),
            form: "S3 on Outposts bucket alias".to_owned(),
        });
    }
    let form = "S3 on Outposts access point hostname".to_owned();
    if outpost == "ec2" {
        return Some(S3Host::Unaddressable {
            form,
            reason: "an S3 on Outposts hostname without an outpost id names a bucket alias ending in --op-s3, and this one does not",
        });
    }
    let kind = AccessPointKind::Outposts {
        outpost: outpost.to_owned(),
    };
    Some(access_point_arn(prefix, &kind, region, suffix, form))
}

/// A VPC interface endpoint: `[prefix.]vpce-<id>.s3.<r>.vpce.<s>`. The
/// prefix is the SDKs' literal `bucket`, `accesspoint` or `control` (with
/// the bucket or access point in front of it), or a bucket directly.
fn vpc_endpoint(labels: &[&str], suffix: &str) -> Option<S3Host> {
    let [prefix @ .., endpoint, "s3", region, "vpce"] = labels else {
        return None;
    };
    if !(endpoint.len() > "vpce-".len() && endpoint.starts_with("vpce-") && is_region(region)) {
        return None;
    }
    Some(match prefix {
        [] | ["bucket"] => S3Host::PathStyle {
            form: "VPC endpoint (path-style)".to_owned(),
        },
        ["accesspoint"] => S3Host::Unaddressable {
            form: "VPC endpoint (access point)".to_owned(),
            reason: "the access point VPC endpoint's host does not carry the access point's <name>-<account id> label, so which access point it serves is unknown",
        },
        [access_point @ .., "accesspoint"] => access_point_arn(
            access_point,
            &AccessPointKind::Standard,
            region,
            suffix,
            "VPC endpoint (access point hostname)".to_owned(),
        ),
        [.., "control"] => S3Host::Unaddressable {
            form: "VPC endpoint (S3 Control)".to_owned(),
            reason: "an S3 Control endpoint serves account and bucket settings, not objects",
        },
        [bucket @ .., "bucket"] | bucket => S3Host::VirtualHosted {
            bucket: bucket.join("."),
            form: "VPC endpoint (virtual-hosted)".to_owned(),
        },
    })
}

/// `<alias>.accesspoint.s3-global.<s>`: the alias, but not the account id
/// the ARN needs.
fn multi_region(labels: &[&str]) -> Option<S3Host> {
    let [_, .., "accesspoint", "s3-global"] = labels else {
        return None;
    };
    Some(S3Host::Unaddressable {
        form: "S3 Multi-Region Access Point hostname".to_owned(),
        reason: "a multi-region access point hostname does not carry the account id, so the access point ARN it stands for is unknown",
    })
}

/// The ARN of the access point a hostname's single leading label names.
fn access_point_arn(
    prefix: &[&str],
    kind: &AccessPointKind,
    region: &str,
    suffix: &str,
    form: String,
) -> S3Host {
    let reason = match prefix {
        [label] => match arn::from_hostname(label, kind, region, suffix) {
            Ok(arn) => return S3Host::VirtualHosted { bucket: arn, form },
            Err(reason) => reason,
        },
        [] => "the access point hostname has no leading <name>-<account id> label",
        _ => "the access point hostname has labels before its <name>-<account id> label",
    };
    S3Host::Unaddressable { form, reason }
}

fn bucket_or_path(bucket: &[&str], form: impl Fn(&str) -> String) -> S3Host {
    if bucket.is_empty() {
        S3Host::PathStyle {
            form: form("path-style"),
        }
    } else {
        S3Host::VirtualHosted {
            bucket: bucket.join("."),
            form: form("virtual-hosted"),
        }
    }
}

/// An availability or local zone id: `usw2-az1`, `use1-bos1-az1`; it ends
/// in `-az<n>`.
fn is_zone_id(zone: &str) -> bool {
    let parts: Vec<&str> = zone.split('-').collect();
    let [first, .., last] = parts.as_slice() else {
        return false;
    };
    first.bytes().any(|b| b.is_ascii_digit())
        && last
            .strip_prefix("az")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virtual_bucket(host: &str) -> Option<String> {
        match classify_host(host)? {
            S3Host::VirtualHosted { bucket, .. } => Some(bucket),
            _ => None,
        }
    }

    fn form(host: &str) -> String {
        match classify_host(host) {
            Some(
                S3Host::VirtualHosted { form, .. }
                | S3Host::PathStyle { form }
                | S3Host::Unaddressable { form, .. },
            ) => form,
            None => panic!("{host} is not recognised"),
        }
    }

    #[test]
    fn virtual_hosted_styles() {
        for host in [
            "my-bucket.s3.amazonaws.com",
            "my-bucket.s3.ap-northeast-2.amazonaws.com",
            "my-bucket.s3-ap-northeast-2.amazonaws.com",
            "my-bucket.s3.dualstack.ap-northeast-2.amazonaws.com",
            "my-bucket.s3-external-1.amazonaws.com",
            "my-bucket.s3-accelerate.amazonaws.com",
            "my-bucket.s3-accelerate.dualstack.amazonaws.com",
            "my-bucket.s3-website-us-east-1.amazonaws.com",
            "my-bucket.s3-website.eu-central-1.amazonaws.com",
            "my-bucket.s3.cn-north-1.amazonaws.com.cn",
            "my-bucket.s3-fips.us-gov-west-1.amazonaws.com",
            "my-bucket.s3-fips.dualstack.us-east-1.amazonaws.com",
            "my-bucket.s3-fips-us-gov-west-1.amazonaws.com",
            "my-bucket.s3.ap-southeast-5.amazonaws.com",
            "my-bucket.s3.il-central-1.amazonaws.com",
            "my-bucket.s3.mx-central-1.amazonaws.com",
            "my-bucket.s3.eusc-de-east-1.amazonaws.eu",
            "my-bucket.s3.us-isob-east-1.sc2s.sgov.gov",
            "my-bucket.s3.us-iso-east-1.c2s.ic.gov",
            "my-bucket.s3.amazonaws.com.",
            "my-bucket.bucket.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com",
            "my-bucket.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com",
            "my-bucket.bucket.vpce-0430d6f168157fef2-vko285as.s3.cn-north-1.vpce.amazonaws.com.cn",
        ] {
            assert_eq!(virtual_bucket(host).as_deref(), Some("my-bucket"), "{host}");
        }
        assert_eq!(
            virtual_bucket("my.dotted.bucket.s3.us-west-2.amazonaws.com").as_deref(),
            Some("my.dotted.bucket")
        );
        assert_eq!(
            virtual_bucket(
                "bucket-name--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com"
            )
            .as_deref(),
            Some("bucket-name--usw2-az1--x-s3")
        );
        assert_eq!(
            virtual_bucket(
                "b--use1-az4--x-s3.s3express-fips-use1-az4.dualstack.us-east-1.amazonaws.com"
            )
            .as_deref(),
            Some("b--use1-az4--x-s3")
        );
        // The SDKs' `bucket.` before `vpce-` is a literal, not part of the bucket.
        assert_eq!(
            virtual_bucket("my.dotted.bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com").as_deref(),
            Some("my.dotted")
        );
    }

    #[test]
    fn access_point_hostnames_name_the_access_point_arn() {
        for (host, arn) in [
            (
                "my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com",
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap",
            ),
            (
                "my-ap-123456789012.s3-accesspoint.dualstack.us-west-2.amazonaws.com",
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap",
            ),
            (
                "my-ap-123456789012.s3-accesspoint-fips.dualstack.us-gov-west-1.amazonaws.com",
                "arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/my-ap",
            ),
            (
                "ap-123456789012.s3-accesspoint.cn-north-1.amazonaws.com.cn",
                "arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap",
            ),
            (
                "my-olap-123456789012.s3-object-lambda.us-west-2.amazonaws.com",
                "arn:aws:s3-object-lambda:us-west-2:123456789012:accesspoint/my-olap",
            ),
            (
                "my-olap-123456789012.s3-object-lambda-fips.us-east-1.amazonaws.com",
                "arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/my-olap",
            ),
            (
                "my-ap-123456789012.op-01ac5d28a6a232904.s3-outposts.us-west-2.amazonaws.com",
                "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/my-ap",
            ),
            (
                "my-ap-123456789012.accesspoint.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
                "arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap",
            ),
        ] {
            assert_eq!(virtual_bucket(host).as_deref(), Some(arn), "{host}");
        }
        assert_eq!(
            virtual_bucket("my-alias-o01ac5d28a6a232904e8xz5w8ijx1qzlbp3i3kuse10--op-s3.op-01ac5d28a6a232904.s3-outposts.us-west-2.amazonaws.com")
                .as_deref(),
            Some("my-alias-o01ac5d28a6a232904e8xz5w8ijx1qzlbp3i3kuse10--op-s3")
        );
    }

    #[test]
    fn path_style_hosts() {
        for host in [
            "s3.amazonaws.com",
            "s3.ap-northeast-2.amazonaws.com",
            "s3-ap-northeast-2.amazonaws.com",
            "s3.dualstack.us-east-1.amazonaws.com",
            "s3-external-1.amazonaws.com",
            "s3.us-gov-west-1.amazonaws.com",
            "s3-fips.us-east-1.amazonaws.com",
            "s3-fips.dualstack.us-east-1.amazonaws.com",
            "s3.cn-north-1.amazonaws.com.cn",
            "vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com",
            "bucket.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com",
            "vpce-1a2b3c4d-5e6f-us-east-1a.s3.us-east-1.vpce.amazonaws.com",
            "s3express-usw2-az1.us-west-2.amazonaws.com",
        ] {
            assert!(
                matches!(classify_host(host), Some(S3Host::PathStyle { .. })),
                "{host}"
            );
        }
    }

    #[test]
    fn s3_hosts_that_name_no_bucket_say_why() {
        for host in [
            "accesspoint.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
            "control.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
            "123456789012.control.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
            "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com",
            "my-ap.s3-accesspoint.us-west-2.amazonaws.com",
            "my-ap-12345678901.s3-accesspoint.us-west-2.amazonaws.com",
            "my-ap-1234567890123.s3-accesspoint.us-west-2.amazonaws.com",
            "123456789012.s3-accesspoint.us-west-2.amazonaws.com",
            "s3-accesspoint.us-west-2.amazonaws.com",
            "x.my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com",
            "my-ap-123456789012.s3-accesspoint.cn-north-1.amazonaws.com",
            "my-ap-123456789012.ec2.s3-outposts.us-west-2.amazonaws.com",
            "s3express-control.us-west-2.amazonaws.com",
        ] {
            assert!(
                matches!(classify_host(host), Some(S3Host::Unaddressable { .. })),
                "{host}: {:?}",
                classify_host(host)
            );
        }
    }

    #[test]
    fn each_host_names_its_form() {
        for (host, expected) in [
            ("b.s3.amazonaws.com", "S3 URL (global, virtual-hosted)"),
            (
                "s3.us-east-1.amazonaws.com",
                "S3 URL (regional, path-style)",
            ),
            (
                "b.s3-fips.dualstack.us-east-1.amazonaws.com",
                "S3 URL (FIPS dualstack, virtual-hosted)",
            ),
            (
                "s3-fips.us-east-1.amazonaws.com",
                "S3 URL (FIPS, path-style)",
            ),
            (
                "a-123456789012.s3-accesspoint.us-west-2.amazonaws.com",
                "S3 access point hostname",
            ),
            (
                "a-123456789012.s3-accesspoint-fips.us-west-2.amazonaws.com",
                "S3 access point hostname (FIPS)",
            ),
            (
                "a-123456789012.s3-object-lambda.us-west-2.amazonaws.com",
                "S3 Object Lambda access point hostname",
            ),
            (
                "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com",
                "S3 Express directory bucket (zonal, virtual-hosted)",
            ),
            (
                "vpce-1a2b.s3.us-east-1.vpce.amazonaws.com",
                "VPC endpoint (path-style)",
            ),
            (
                "b.bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com",
                "VPC endpoint (virtual-hosted)",
            ),
        ] {
            assert_eq!(form(host), expected, "{host}");
        }
    }

    #[test]
    fn other_hosts_are_not_s3() {
        for host in [
            "example.com",
            "d111.cloudfront.net",
            "s3.example.com",
            "ec2.amazonaws.com",
            "bucket.s4.amazonaws.com",
            "amazonaws.com",
            "s3.amazonaws.com.evil.com",
            "bucket.s3.amazonaws.com.evil.com",
            "evil-s3-accesspoint.com",
            "my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com.evil.com",
            "bucket.s3.notaregion.amazonaws.com",
            "bucket.s3.us-east-1.amazonaws.evil.com",
            "bucket.vpce-1a2b.s3.us-east-1.vpce.evil.com",
            "xs3.amazonaws.com",
            "bucket.s3..amazonaws.com",
            "bucket.s3express-control-x.us-west-2.amazonaws.com",
            "accesspoint.s3-global.amazonaws.com",
        ] {
            assert_eq!(classify_host(host), None, "{host}");
        }
    }
}
