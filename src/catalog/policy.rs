//! Masking policies: what happens to each catalogued column of a row being
//! erased, and how to check afterwards that it happened.
//!
//! The rule this module keeps: a policy renders SQL only from validated
//! identifiers, constants it owns, and the column's type as the database
//! itself reported it, in that database's dialect; a user-supplied fixed
//! value is always a bound parameter.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::dialect::Dialect;
use super::ident::Ident;

/// What to do with one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Policy {
    /// `"null"`, `"{}"`, `"[]"`, `"random"` or `"keep"`.
    Named(NamedPolicy),
    /// `{ fixed = "value" }`: a constant, e.g. `"(erased)"` for a NOT NULL column.
    Fixed { fixed: String },
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Fixed { fixed: String },
        }
        const VALID: &str = "\"null\", \"{}\", \"[]\", \"random\", \"keep\" or { fixed = \"...\" }";
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom(format!("a masking policy is one of {VALID}")))?
        {
            Raw::Fixed { fixed } => Ok(Policy::Fixed { fixed }),
            Raw::Name(name) => {
                let named = match name.as_str() {
                    "null" => NamedPolicy::Null,
                    "{}" => NamedPolicy::EmptyObject,
                    "[]" => NamedPolicy::EmptyArray,
                    "random" => NamedPolicy::Random,
                    "keep" => NamedPolicy::Keep,
                    other => {
                        return Err(serde::de::Error::custom(format!(
                            "unknown masking policy {other:?}; use one of {VALID}"
                        )));
                    }
                };
                Ok(Policy::Named(named))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamedPolicy {
    #[serde(rename = "null")]
    Null,
    #[serde(rename = "{}")]
    EmptyObject,
    #[serde(rename = "[]")]
    EmptyArray,
    /// A random value of the column's type (text-like or uuid): destroys the
    /// content but keeps NOT NULL and uniqueness constraints satisfied.
    #[serde(rename = "random")]
    Random,
    /// Not personal data (timestamps, GPU timelines): left as it is, and
    /// listed so that the catalog says so explicitly.
    #[serde(rename = "keep")]
    Keep,
}

/// What happens to a whole row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowErasure {
    /// Mask the listed columns and keep the row (soft erasure; the seed's
    /// choice, so timestamps and GPU timelines stay for statistics).
    #[default]
    Mask,
    /// Delete the row.
    Delete,
}

/// Column facts the policies need, read from the live database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// PostgreSQL: `format_type()` of the column, e.g. `jsonb`, `text`,
    /// `character varying(64)`. SQLite: the declared type, lowercased, e.g.
    /// `json`, `text`, `varchar(64)`, `integer`.
    pub sql_type: String,
    pub nullable: bool,
}

impl ColumnType {
    pub fn is_json(&self) -> bool {
        matches!(self.sql_type.as_str(), "json" | "jsonb")
    }

    /// The expression that compares `column` by value: `json` has no
    /// equality operator on PostgreSQL, so it is compared as `jsonb`.
    fn comparable(&self, column: &str) -> (String, &str) {
        if self.sql_type == "json" {
            (format!("CAST({column} AS jsonb)"), "jsonb")
        } else {
            (column.to_owned(), self.sql_type.as_str())
        }
    }

    pub fn is_text_like(&self) -> bool {
        let ty = self.sql_type.as_str();
        ty == "text"
            || ty.starts_with("character varying")
            || ty.starts_with("character(")
            || ty == "character"
            // SQLite spellings (declared types, lowercased).
            || ty.starts_with("varchar")
            || ty.starts_with("nvarchar")
            || ty.starts_with("char(")
            || ty == "char"
            || ty == "clob"
    }
}

/// One column's assignment, checked against its type.
#[derive(Debug, Clone)]
pub struct ColumnMask {
    pub column: Ident,
    pub policy: Policy,
    pub column_type: ColumnType,
}

impl Policy {
    pub fn is_keep(&self) -> bool {
        matches!(self, Policy::Named(NamedPolicy::Keep))
    }

    /// Whether this policy can apply to a column of this type; the error says
    /// what to use instead.
    pub fn check_type(&self, column_type: &ColumnType) -> Result<(), String> {
        let ty = &column_type.sql_type;
        match self {
            Policy::Named(NamedPolicy::Null) if !column_type.nullable => Err(format!(
                "policy \"null\" on a NOT NULL column ({ty}); use {{ fixed = \"...\" }} or \"random\""
            )),
            Policy::Named(NamedPolicy::EmptyObject | NamedPolicy::EmptyArray)
                if !(column_type.is_json() || column_type.is_text_like()) =>
            {
                Err(format!(
                    "policy \"{self}\" needs a json, jsonb or text column, not {ty}"
                ))
            }
            Policy::Named(NamedPolicy::Random) if !(column_type.is_text_like() || ty == "uuid") => {
                Err(format!(
                    "policy \"random\" needs a text or uuid column, not {ty}; use a fixed value"
                ))
            }
            _ => Ok(()),
        }
    }
}

impl ColumnMask {
    /// The `SET` assignment, or None for `keep`. Fixed values take the next
    /// parameter number from `params`, which collects the values to bind.
    pub fn assignment(&self, params: &mut Vec<String>, dialect: Dialect) -> Option<String> {
        let column = self.column.quoted();
        let ty = &self.column_type.sql_type;
        let value = match (dialect, &self.policy) {
            (_, Policy::Named(NamedPolicy::Keep)) => return None,
            (_, Policy::Named(NamedPolicy::Null)) => "NULL".to_owned(),
            (Dialect::Postgres, Policy::Named(NamedPolicy::EmptyObject)) => {
                format!("CAST('{{}}' AS {ty})")
            }
            (Dialect::Postgres, Policy::Named(NamedPolicy::EmptyArray)) => {
                format!("CAST('[]' AS {ty})")
            }
            (Dialect::Postgres, Policy::Named(NamedPolicy::Random)) if ty == "uuid" => {
                "gen_random_uuid()".to_owned()
            }
            (Dialect::Postgres, Policy::Named(NamedPolicy::Random)) => {
                format!("CAST(md5(random()::text || clock_timestamp()::text) AS {ty})")
            }
            (Dialect::Postgres, Policy::Fixed { fixed }) => {
                params.push(fixed.clone());
                format!("CAST(CAST(${} AS text) AS {ty})", params.len())
            }
            // SQLite stores JSON as text, and types by affinity: no casts.
            (Dialect::Sqlite, Policy::Named(NamedPolicy::EmptyObject)) => "'{}'".to_owned(),
            (Dialect::Sqlite, Policy::Named(NamedPolicy::EmptyArray)) => "'[]'".to_owned(),
            (Dialect::Sqlite, Policy::Named(NamedPolicy::Random)) => {
                "lower(hex(randomblob(16)))".to_owned()
            }
            (Dialect::Sqlite, Policy::Fixed { fixed }) => {
                params.push(fixed.clone());
                format!("${}", params.len())
            }
        };
        Some(format!("{column} = {value}"))
    }

    /// A predicate true when the column holds its masked value; None when the
    /// outcome cannot be told from the value alone (`random`, `keep`).
    pub fn masked_predicate(&self, params: &mut Vec<String>, dialect: Dialect) -> Option<String> {
        let column = self.column.quoted();
        let ty = &self.column_type.sql_type;
        match (dialect, &self.policy) {
            (_, Policy::Named(NamedPolicy::Keep | NamedPolicy::Random)) => None,
            (_, Policy::Named(NamedPolicy::Null)) => Some(format!("{column} IS NULL")),
            (Dialect::Postgres, Policy::Named(NamedPolicy::EmptyObject)) => {
                let (column, ty) = self.column_type.comparable(&column);
                Some(format!(
                    "{column} IS NOT DISTINCT FROM CAST('{{}}' AS {ty})"
                ))
            }
            (Dialect::Postgres, Policy::Named(NamedPolicy::EmptyArray)) => {
                let (column, ty) = self.column_type.comparable(&column);
                Some(format!("{column} IS NOT DISTINCT FROM CAST('[]' AS {ty})"))
            }
            (Dialect::Postgres, Policy::Fixed { fixed }) => {
                params.push(fixed.clone());
                Some(format!(
                    "{column}::text IS NOT DISTINCT FROM CAST(CAST(${} AS text) AS {ty})::text",
                    params.len()
                ))
            }
            (Dialect::Sqlite, Policy::Named(NamedPolicy::EmptyObject)) => {
                Some(format!("{column} IS '{{}}'"))
            }
            (Dialect::Sqlite, Policy::Named(NamedPolicy::EmptyArray)) => {
                Some(format!("{column} IS '[]'"))
            }
            (Dialect::Sqlite, Policy::Fixed { fixed }) => {
                params.push(fixed.clone());
                Some(format!(
                    "CAST({column} AS TEXT) IS CAST(${} AS TEXT)",
                    params.len()
                ))
            }
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Named(NamedPolicy::Null) => f.write_str("null"),
            Policy::Named(NamedPolicy::EmptyObject) => f.write_str("{}"),
            Policy::Named(NamedPolicy::EmptyArray) => f.write_str("[]"),
            Policy::Named(NamedPolicy::Random) => f.write_str("random"),
            Policy::Named(NamedPolicy::Keep) => f.write_str("keep"),
            Policy::Fixed { .. } => f.write_str("fixed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(policy: Policy, sql_type: &str, nullable: bool) -> ColumnMask {
        ColumnMask {
            column: Ident::new("option").unwrap(),
            policy,
            column_type: ColumnType {
                sql_type: sql_type.to_owned(),
                nullable,
            },
        }
    }

    #[test]
    fn policies_parse_from_catalog_spelling() {
        let parsed: std::collections::BTreeMap<String, Policy> = toml::from_str(
            r#"
            a = "null"
            b = "{}"
            c = "[]"
            d = "random"
            e = "keep"
            f = { fixed = "(erased)" }
            "#,
        )
        .unwrap();
        assert_eq!(parsed["a"], Policy::Named(NamedPolicy::Null));
        assert_eq!(parsed["b"], Policy::Named(NamedPolicy::EmptyObject));
        assert_eq!(
            parsed["f"],
            Policy::Fixed {
                fixed: "(erased)".into()
            }
        );
        let err = toml::from_str::<std::collections::BTreeMap<String, Policy>>("a = \"nul\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown masking policy \"nul\""), "{err}");
        assert!(err.contains("\"random\""), "{err}");
    }

    #[test]
    fn fixed_values_are_bound_not_inlined() {
        let mut params = Vec::new();
        let sql = mask(
            Policy::Fixed {
                fixed: "x'; drop".into(),
            },
            "text",
            false,
        )
        .assignment(&mut params, Dialect::Postgres)
        .unwrap();
        assert_eq!(sql, "\"option\" = CAST(CAST($1 AS text) AS text)");
        assert_eq!(params, vec!["x'; drop".to_owned()]);
        let mut params = Vec::new();
        let sql = mask(
            Policy::Fixed {
                fixed: "x'; drop".into(),
            },
            "text",
            false,
        )
        .assignment(&mut params, Dialect::Sqlite)
        .unwrap();
        assert_eq!(sql, "\"option\" = $1");
        assert_eq!(params, vec!["x'; drop".to_owned()]);
    }

    #[test]
    fn type_checks_name_the_alternative() {
        let null_on_not_null = mask(Policy::Named(NamedPolicy::Null), "text", false);
        let err = null_on_not_null
            .policy
            .check_type(&null_on_not_null.column_type)
            .unwrap_err();
        assert!(err.contains("NOT NULL"), "{err}");
        let obj_on_int = mask(Policy::Named(NamedPolicy::EmptyObject), "integer", true);
        assert!(
            obj_on_int
                .policy
                .check_type(&obj_on_int.column_type)
                .is_err()
        );
        let obj_on_jsonb = mask(Policy::Named(NamedPolicy::EmptyObject), "jsonb", false);
        assert!(
            obj_on_jsonb
                .policy
                .check_type(&obj_on_jsonb.column_type)
                .is_ok()
        );
    }

    #[test]
    fn json_columns_are_verified_as_jsonb() {
        let json = mask(Policy::Named(NamedPolicy::EmptyObject), "json", true);
        let sql = json
            .masked_predicate(&mut Vec::new(), Dialect::Postgres)
            .unwrap();
        assert_eq!(
            sql,
            "CAST(\"option\" AS jsonb) IS NOT DISTINCT FROM CAST('{}' AS jsonb)"
        );
    }

    #[test]
    fn keep_renders_nothing() {
        let keep = mask(Policy::Named(NamedPolicy::Keep), "timestamptz", true);
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            assert!(keep.assignment(&mut Vec::new(), dialect).is_none());
            assert!(keep.masked_predicate(&mut Vec::new(), dialect).is_none());
        }
    }
}
