//! The small JSON path language the catalog uses to say where file
//! references hide inside a JSON column: `$` (the whole value), field names
//! joined by dots, and `[*]` for "every element of this array".
//!
//! Examples: `inputImageUrl`, `inputFileList[*]`, `result.images[*].url`,
//! `[*]` (the column is an array), `$` (the column holds a URL itself).
//!
//! Evaluation never fails: a path that does not match a document selects
//! nothing, because a legacy row simply lacks the newer fields.

use std::fmt;

use serde_json::Value;

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    EachElement,
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad JSON path {path:?}: {reason}")]
pub struct JsonPathError {
    pub path: String,
    pub reason: &'static str,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<Self, JsonPathError> {
        let fail = |reason| JsonPathError {
            path: source.to_owned(),
            reason,
        };
        let trimmed = source.trim();
        if trimmed != source || source.is_empty() {
            return Err(fail("empty, or has surrounding spaces"));
        }
        if source == "$" {
            return Ok(JsonPath {
                source: source.to_owned(),
                steps: Vec::new(),
            });
        }
        let mut steps = Vec::new();
        for (index, segment) in source.split('.').enumerate() {
            let (name, mut rest) = match segment.find('[') {
                Some(at) => segment.split_at(at),
                None => (segment, ""),
            };
            // Only the first segment may start with `[*]` (the column is an array).
            let array_at_root = index == 0 && !rest.is_empty();
            if name.is_empty() && !array_at_root {
                return Err(fail(
                    "empty field name (two dots, or a leading/trailing dot)",
                ));
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(fail(
                    "field names may hold only letters, digits, '_' and '-'",
                ));
            }
            if !name.is_empty() {
                steps.push(Step::Field(name.to_owned()));
            }
            while !rest.is_empty() {
                match rest.strip_prefix("[*]") {
                    Some(after) => {
                        steps.push(Step::EachElement);
                        rest = after;
                    }
                    None => return Err(fail("only [*] may follow a field name")),
                }
            }
        }
        Ok(JsonPath {
            source: source.to_owned(),
            steps,
        })
    }

    /// Every value the path selects in `document`.
    pub fn select<'a>(&self, document: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![document];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match (step, value) {
                    (Step::Field(name), Value::Object(map)) => {
                        if let Some(found) = map.get(name) {
                            next.push(found);
                        }
                    }
                    (Step::EachElement, Value::Array(items)) => next.extend(items.iter()),
                    _ => {}
                }
            }
            current = next;
        }
        current
            .into_iter()
            .filter(|value| !value.is_null())
            .collect()
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(path: &str, doc: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .select(doc)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn fields_arrays_and_root() {
        let doc = json!({
            "inputImageUrl": "https://a/b.png",
            "inputFileList": [{"key": "k1"}, {"key": "k2"}],
            "result": {"images": [{"url": "u1"}, {"url": null}, {"url": "u3"}]}
        });
        assert_eq!(
            select("inputImageUrl", &doc),
            vec![json!("https://a/b.png")]
        );
        assert_eq!(select("inputFileList[*]", &doc).len(), 2);
        assert_eq!(
            select("result.images[*].url", &doc),
            vec![json!("u1"), json!("u3")]
        );
        assert_eq!(select("$", &json!("s3://b/k")), vec![json!("s3://b/k")]);
        assert_eq!(select("[*]", &json!(["x", "y"])).len(), 2);
    }

    #[test]
    fn missing_or_mistyped_parts_select_nothing() {
        let doc = json!({"url": 5, "fileList": {"not": "an array"}});
        assert!(select("imageUrl", &doc).is_empty());
        assert!(select("fileList[*]", &doc).is_empty());
        assert!(select("url.deeper", &doc).is_empty());
        assert!(select("inputFileList[*]", &json!("a string")).is_empty());
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "", " url", "a..b", ".a", "a.", "a[0]", "a[*]x", "a b", "a[*",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
