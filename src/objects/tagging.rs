//! Tag-and-expire: instead of deleting an object, lethe tags it and the
//! bucket's lifecycle rule (filtered on that tag) expires it. PutObjectTagging
//! replaces an object's whole tag set, so the tag is merged into the tags
//! the object already has, never written over them.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::Tagging;

use super::{ObjectError, ObjectStore};
use crate::catalog::ExpiryTag;

/// A tag, as lethe puts it on objects.
pub type Tag = ExpiryTag;

/// Whether a tag set holds `tag`, key and value.
fn carries(tags: &[(String, String)], tag: &Tag) -> bool {
    tags.iter().any(|(k, v)| *k == tag.key && *v == tag.value)
}

/// What an object says about the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagState {
    /// No such object (or version): nothing left to expire.
    Missing,
    Tagged,
    Untagged,
}

impl ObjectStore {
    /// Tags one object (or one version of it), keeping its other tags.
    /// Returns [`TagState::Missing`] when there is nothing to tag, else
    /// [`TagState::Tagged`].
    pub async fn add_tag(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        tag: &Tag,
    ) -> Result<TagState, ObjectError> {
        let Some(mut tags) = self.tags(bucket, key, version).await? else {
            return Ok(TagState::Missing);
        };
        if carries(&tags, tag) {
            return Ok(TagState::Tagged);
        }
        tags.retain(|(k, _)| *k != tag.key);
        tags.push((tag.key.clone(), tag.value.clone()));
        let tag_set = tags
            .into_iter()
            .map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| ObjectError::construction("PutObjectTagging", bucket, err))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|err| ObjectError::construction("PutObjectTagging", bucket, err))?;
        let tagging = &tagging;
        self.resend
            .run(move || async move {
                match self
                    .client
                    .put_object_tagging()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version.map(str::to_owned))
                    .tagging(tagging.clone())
                    .send()
                    .await
                {
                    Ok(_) => Ok(TagState::Tagged),
                    // Deleted between the read and the write: nothing to expire.
                    Err(err) if is_missing(&err) => Ok(TagState::Missing),
                    Err(err) => Err(ObjectError::from_sdk("PutObjectTagging", bucket, err)),
                }
            })
            .await
    }

    /// Whether an object (or version) carries the tag.
    pub async fn tag_state(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        tag: &Tag,
    ) -> Result<TagState, ObjectError> {
        Ok(match self.tags(bucket, key, version).await? {
            None => TagState::Missing,
            Some(tags) if carries(&tags, tag) => TagState::Tagged,
            Some(_) => TagState::Untagged,
        })
    }

    /// An object's tags, or `None` when it does not exist.
    async fn tags(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Vec<(String, String)>>, ObjectError> {
        self.resend
            .run(move || async move { self.tags_once(bucket, key, version).await })
            .await
    }

    async fn tags_once(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Vec<(String, String)>>, ObjectError> {
        match self
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(output) => Ok(Some(
                output
                    .tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
            )),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(ObjectError::from_sdk("GetObjectTagging", bucket, err)),
        }
    }
}

/// Tagging operations have no modelled "not found" error: S3 answers
/// NoSuchKey / NoSuchVersion with 404 (and 405 for a delete marker's version).
fn is_missing<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            matches!(
                service.err().code(),
                Some("NoSuchKey" | "NoSuchVersion" | "NotFound")
            ) || matches!(service.raw().status().as_u16(), 404 | 405)
        }
        _ => false,
    }
}
