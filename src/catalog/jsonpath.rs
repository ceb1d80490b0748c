//! The small JSON path language the catalog uses to say where file
//! references hide inside a JSON column: `$` (the whole value), field names
//! joined by dots, `*` for "every field of this object" and `[*]` for
//! "every element of this array".
//!
//! Examples: `inputImageUrl`, `inputFileList[*]`, `result.images[*].url`,
//! `[*]` (the column is an array), `$` (the column holds a URL itself),
//! `outputs.*.url` (an object keyed by size, each with a url).
//!
//! Evaluation never fails: a path that does not match a document selects
//! nothing, because a legacy row simply lacks the newer fields. But where
//! the document has a value of another shape than the path walks through
//! (a string where the path expects an array), [`JsonPath::select_traced`]
//! says so, so that a reference in an unexpected shape is reported rather
//! than missed.

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
    AnyField,
    EachElement,
}

/// What a path found in a document: the values it selects, and the values
/// it could not walk through (of another shape than it expects), each with
/// its location (`inputFileList`, `result.images[2]`).
#[derive(Debug, Default)]
pub struct Selection<'a> {
    pub values: Vec<(String, &'a Value)>,
    pub mismatches: Vec<(String, &'a Value)>,
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
            if name == "*" {
                steps.push(Step::AnyField);
            } else if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(fail(
                    "field names may hold only letters, digits, '_' and '-' (or be '*')",
                ));
            } else if !name.is_empty() {
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

    /// `$`: the whole value.
    pub fn root() -> Self {
        JsonPath {
            source: "$".to_owned(),
            steps: Vec::new(),
        }
    }

    /// Whether this is `$`.
    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every value the path selects in `document`.
    pub fn select<'a>(&self, document: &'a Value) -> Vec<&'a Value> {
        self.select_traced(document)
            .values
            .into_iter()
            .map(|(_, value)| value)
            .collect()
    }

    /// The values the path selects (nulls left out), with their locations,
    /// and the values of the wrong shape it met on the way.
    pub fn select_traced<'a>(&self, document: &'a Value) -> Selection<'a> {
        let mut selection = Selection::default();
        let mut current = vec![("$".to_owned(), document)];
        for step in &self.steps {
            let mut next = Vec::new();
            for (location, value) in current {
                match (step, value) {
                    (Step::Field(name), Value::Object(map)) => {
                        if let Some(found) = map.get(name) {
                            next.push((child(&location, name), found));
                        }
                    }
                    (Step::AnyField, Value::Object(map)) => {
                        next.extend(
                            map.iter()
                                .map(|(name, found)| (child(&location, name), found)),
                        );
                    }
                    (Step::EachElement, Value::Array(items)) => next.extend(
                        items
                            .iter()
                            .enumerate()
                            .map(|(index, found)| (format!("{location}[{index}]"), found)),
                    ),
                    (_, Value::Null) => {}
                    _ => selection.mismatches.push((location, value)),
                }
            }
            current = next;
        }
        selection.values = current
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .collect();
        selection
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// The location of field `name` below `location`.
fn child(location: &str, name: &str) -> String {
    if location == "$" {
        name.to_owned()
    } else {
        format!("{location}.{name}")
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
    fn wildcards_and_shape_mismatches_are_traced() {
        let doc = json!({"outputs": {"small": {"url": "a"}, "large": {"url": "b"}}});
        assert_eq!(select("outputs.*.url", &doc).len(), 2);
        let doc = json!({"inputFileList": "https://x/y.png", "list": [{"k": 1}, 7]});
        let path = JsonPath::parse("inputFileList[*]").unwrap();
        let traced = path.select_traced(&doc);
        assert!(traced.values.is_empty());
        assert_eq!(traced.mismatches.len(), 1);
        assert_eq!(traced.mismatches[0].0, "inputFileList");
        let path = JsonPath::parse("list[*].k").unwrap();
        let traced = path.select_traced(&doc);
        assert_eq!(traced.values.len(), 1);
        assert_eq!(traced.values[0].0, "list[0].k");
        assert_eq!(traced.mismatches[0].0, "list[1]");
        // A missing field is no mismatch: legacy rows lack newer fields.
        assert!(
            JsonPath::parse("nope[*]")
                .unwrap()
                .select_traced(&doc)
                .mismatches
                .is_empty()
        );
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
