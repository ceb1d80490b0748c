//! S3 access point ARNs, the "bucket" of an object reached through an access
//! point: split off the front of an `s3://arn:...` URI, or built from an
//! access point hostname, and AWS region labels and partitions, which both
//! need.
//!
//! The rule this module keeps: an ARN is accepted only in the shapes S3
//! serves objects through (an access point, an Object Lambda access point,
//! an S3 on Outposts access point, a Multi-Region Access Point), and is
//! written in one canonical form (`/` between the parts of its resource), so
//! that the same access point always compares equal to the ARN listed in
//! `storage.buckets`. Anything else is rejected with the reason; never guessed.

/// Why the ARN at the front of an `s3://` URI is not an access point ARN.
/// The messages name the part that is wrong, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("its partition is not aws or aws-<name>")]
    Partition,
    #[error("its service is not s3, s3-object-lambda or s3-outposts")]
    Service,
    #[error("its region is not an AWS region")]
    Region,
    #[error("its account id is not 12 digits")]
    Account,
    #[error("its resource is not accesspoint/<name>")]
    AccessPoint,
    #[error("its resource is not outpost/<outpost id>/accesspoint/<name>")]
    Outpost,
}

/// Splits `arn:<partition>:<service>:<region>:<account>:<resource>/<key>`
/// into the access point's ARN (canonical: `/` inside the resource) and the
/// key, which may be empty. `text` must start with `arn:`.
pub fn split_uri(text: &str) -> Result<(String, &str), ArnError> {
    let mut fields = text.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ArnError::AccessPoint);
    };
    if !is_partition(partition) {
        return Err(ArnError::Partition);
    }
    if !matches!(service, "s3" | "s3-object-lambda" | "s3-outposts") {
        return Err(ArnError::Service);
    }
    // A Multi-Region Access Point's ARN has no region.
    let regionless_ok = service == "s3";
    if !(is_region(region) || region.is_empty() && regionless_ok) {
        return Err(ArnError::Region);
    }
    if !is_account(account) {
        return Err(ArnError::Account);
    }
    let (parts, key) = match service {
        "s3" | "s3-object-lambda" => {
            let (parts, key) = resource_parts(resource, 2).ok_or(ArnError::AccessPoint)?;
            if parts[0] != "accesspoint" {
                return Err(ArnError::AccessPoint);
            }
            (parts, key)
        }
        "s3-outposts" => {
            let (parts, key) = resource_parts(resource, 4).ok_or(ArnError::Outpost)?;
            if parts[0] != "outpost" || parts[2] != "accesspoint" {
                return Err(ArnError::Outpost);
            }
            (parts, key)
        }
        _ => return Err(ArnError::Service),
    };
    let arn = format!(
        "arn:{partition}:{service}:{region}:{account}:{}",
        parts.join("/")
    );
    Ok((arn, key))
}

/// The first `count` parts of an ARN resource (each a name, separated by
/// `/` or `:`), and the key after the `/` that ends the last one.
fn resource_parts(resource: &str, count: usize) -> Option<(Vec<&str>, &str)> {
    let mut parts = Vec::with_capacity(count);
    let mut rest = resource;
    while parts.len() < count {
        let end = if parts.len() + 1 == count {
            // The last part (the access point's name) ends at the key's `/`.
            rest.find('/').unwrap_or(rest.len())
        } else {
            rest.find(['/', ':'])?
        };
        let part = &rest[..end];
        if !is_name(part) {
            return None;
        }
        parts.push(part);
        rest = &rest[end..];
        if parts.len() < count {
            rest = &rest[1..];
        }
    }
    let key = rest.strip_prefix('/').unwrap_or(rest);
    Some((parts, key))
}

/// Which access point a hostname's leading label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessPointKind {
    /// `<name>-<account>.s3-accesspoint.<region>...`
    Standard,
    /// `<name>-<account>.s3-object-lambda.<region>...`
    ObjectLambda,
    /// `<name>-<account>.<outpost id>.s3-outposts.<region>...`
    Outposts { outpost: String },
}

/// Builds the ARN an access point hostname stands for, from its leading
/// `<name>-<account>` label (the account id is the label's last
/// `-`-separated part, 12 digits), its region, and the DNS suffix it is
/// served under (which must be its partition's). The error says which part
/// is missing.
pub fn from_hostname(
    label: &str,
    kind: &AccessPointKind,
    region: &str,
    dns_suffix: &str,
) -> Result<String, &'static str> {
    let Some((name, account)) = label.rsplit_once('-') else {
        return Err("the access point hostname's first label has no -<12-digit account id>");
    };
    if !is_account(account) {
        return Err(
            "the access point hostname's first label does not end in a 12-digit account id",
        );
    }
    if name.is_empty() {
        return Err("the access point hostname's first label has an account id but no name");
    }
    let partition = partition_for_region(region);
    if dns_suffix_for_partition(partition) != dns_suffix {
        return Err(
            "the access point hostname's DNS suffix is not the one of its region's partition",
        );
    }
    Ok(match kind {
        AccessPointKind::Standard => {
            format!("arn:{partition}:s3:{region}:{account}:accesspoint/{name}")
        }
        AccessPointKind::ObjectLambda => {
            format!("arn:{partition}:s3-object-lambda:{region}:{account}:accesspoint/{name}")
        }
        AccessPointKind::Outposts { outpost } => format!(
            "arn:{partition}:s3-outposts:{region}:{account}:outpost/{outpost}/accesspoint/{name}"
        ),
    })
}

/// A region label, read liberally so that regions AWS opens later are
/// recognised too: three or more `-`-separated groups, the first of
/// lowercase letters (`us`, `eusc`), the middle ones of lowercase letters or
/// digits (`gov`, `isob`, `southeast`), the last a number of one or two
/// digits. `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eusc-de-east-1`.
pub fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    parts.len() >= 3
        && first.len() >= 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && middle.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && (1..=2).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// The partition a region belongs to, by its prefix, as the SDKs' partition
/// table reads it. Each prefix ends in `-`, so `us-iso-` does not take the
/// `us-isob-` regions.
pub fn partition_for_region(region: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 7] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-iso-", "aws-iso"),
        ("us-isob-", "aws-iso-b"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-isof-", "aws-iso-f"),
        ("eusc-", "aws-eusc"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

/// The DNS suffix S3 is served under in a partition.
pub fn dns_suffix_for_partition(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso" => "c2s.ic.gov",
        "aws-iso-b" => "sc2s.sgov.gov",
        "aws-iso-e" => "cloud.adc-e.uk",
        "aws-iso-f" => "csp.hci.ic.gov",
        "aws-eusc" => "amazonaws.eu",
        _ => "amazonaws.com",
    }
}

/// Every DNS suffix S3 is served under, one per partition (`aws` and
/// `aws-us-gov` share `amazonaws.com`).
pub const DNS_SUFFIXES: [&str; 7] = [
    "amazonaws.com",
    "amazonaws.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
];

fn is_partition(text: &str) -> bool {
    text == "aws"
        || text.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        })
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// An access point or outpost name: letters, digits, `-`, and `.` (a
/// Multi-Region Access Point's alias is `<id>.mrap`).
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_point_uris_split_after_the_name() {
        assert_eq!(
            split_uri("arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/some/key"),
            Ok((
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap".to_owned(),
                "some/key"
            ))
        );
        // The `:` form of the resource is written canonically, with `/`.
        assert_eq!(
            split_uri("arn:aws:s3:us-west-2:123456789012:accesspoint:my-ap/k"),
            Ok((
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap".to_owned(),
                "k"
            ))
        );
        assert_eq!(
            split_uri("arn:aws-cn:s3-object-lambda:cn-north-1:123456789012:accesspoint/ol/a//b"),
            Ok((
                "arn:aws-cn:s3-object-lambda:cn-north-1:123456789012:accesspoint/ol".to_owned(),
                "a//b"
            ))
        );
        assert_eq!(
            split_uri(
                "arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/ap/k/1"
            ),
            Ok((
                "arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/ap"
                    .to_owned(),
                "k/1"
            ))
        );
        assert_eq!(
            split_uri("arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/k"),
            Ok((
                "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap".to_owned(),
                "k"
            ))
        );
        assert_eq!(
            split_uri("arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap"),
            Ok((
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap".to_owned(),
                ""
            ))
        );
    }

    #[test]
    fn other_arns_are_rejected_with_the_part_that_is_wrong() {
        for (arn, error) in [
            (
                "arn:azure:s3:us-west-2:123456789012:accesspoint/a/k",
                ArnError::Partition,
            ),
            ("arn:aws:iam::123456789012:role/r", ArnError::Service),
            (
                "arn:aws:s3:mars:123456789012:accesspoint/a/k",
                ArnError::Region,
            ),
            (
                "arn:aws:s3-object-lambda::123456789012:accesspoint/a/k",
                ArnError::Region,
            ),
            (
                "arn:aws:s3:us-west-2:12345678901:accesspoint/a/k",
                ArnError::Account,
            ),
            (
                "arn:aws:s3:us-west-2:123456789012:bucket/a/k",
                ArnError::AccessPoint,
            ),
            (
                "arn:aws:s3:us-west-2:123456789012:accesspoint//k",
                ArnError::AccessPoint,
            ),
            (
                "arn:aws:s3:us-west-2:123456789012:accesspoint",
                ArnError::AccessPoint,
            ),
            (
                "arn:aws:s3:us-west-2:123456789012:accesspoint/a:b/k",
                ArnError::AccessPoint,
            ),
            (
                "arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-1/bucket/b/k",
                ArnError::Outpost,
            ),
            ("arn:aws:s3:us-west-2", ArnError::AccessPoint),
        ] {
            assert_eq!(split_uri(arn), Err(error), "{arn}");
        }
    }

    #[test]
    fn hostnames_become_arns_in_their_partition() {
        let standard = AccessPointKind::Standard;
        assert_eq!(
            from_hostname(
                "my-ap-123456789012",
                &standard,
                "us-west-2",
                "amazonaws.com"
            )
            .as_deref(),
            Ok("arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap")
        );
        assert_eq!(
            from_hostname(
                "my-ap-123456789012",
                &standard,
                "cn-north-1",
                "amazonaws.com.cn"
            )
            .as_deref(),
            Ok("arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/my-ap")
        );
        assert_eq!(
            from_hostname(
                "ap-123456789012",
                &standard,
                "us-gov-west-1",
                "amazonaws.com"
            )
            .as_deref(),
            Ok("arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/ap")
        );
        for label in [
            "my-ap",
            "my-ap-12345678901",
            "my-ap-1234567890123",
            "-123456789012",
            "123456789012",
        ] {
            assert!(
                from_hostname(label, &standard, "us-west-2", "amazonaws.com").is_err(),
                "{label}"
            );
        }
        assert!(
            from_hostname("ap-123456789012", &standard, "cn-north-1", "amazonaws.com").is_err()
        );
    }

    #[test]
    fn regions_are_read_liberally_but_not_loosely() {
        for region in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-5",
            "il-central-1",
            "mx-central-1",
            "eusc-de-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "ap-east-2",
        ] {
            assert!(is_region(region), "{region}");
        }
        for label in [
            "external-1",
            "us-east",
            "us-east-123",
            "US-east-1",
            "us--1",
            "1s-east-1",
            "s3",
            "dualstack",
            "usw2-az1",
        ] {
            assert!(!is_region(label), "{label}");
        }
        assert_eq!(partition_for_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(partition_for_region("us-iso-east-1"), "aws-iso");
        assert_eq!(partition_for_region("eusc-de-east-1"), "aws-eusc");
        assert_eq!(partition_for_region("ap-northeast-2"), "aws");
    }
}
