//! SQL identifiers from the catalog. The rule this module keeps: a name from
//! a catalog file reaches SQL only as an [`Ident`] or [`TableName`], which
//! accept plain names alone (letters, digits, underscore; not starting with a
//! digit; at most 63 bytes, PostgreSQL's limit) and always render quoted.
//! Values never pass through here: they are bound parameters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated, plain SQL identifier (a column or an unqualified table name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ident(String);

/// Why a name was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("empty identifier")]
    Empty,
    #[error("identifier {0:?} is longer than 63 bytes")]
    TooLong(String),
    #[error(
        "identifier {0:?} is not a plain SQL name (use letters, digits and '_', not starting with a digit)"
    )]
    NotPlain(String),
}

impl Ident {
    pub fn new(name: &str) -> Result<Self, IdentError> {
        if name.is_empty() {
            return Err(IdentError::Empty);
        }
        if name.len() > 63 {
            return Err(IdentError::TooLong(name.to_owned()));
        }
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !(first_ok && rest_ok) {
            return Err(IdentError::NotPlain(name.to_owned()));
        }
        Ok(Ident(name.to_owned()))
    }

    /// The name as written in the catalog.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted for SQL. Validation already excludes `"`, so quoting
    /// cannot be escaped; quoting still matters, for names that are keywords
    /// (`user`, `order`) or hold capitals.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl TryFrom<String> for Ident {
    type Error = IdentError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ident::new(&value)
    }
}

impl From<Ident> for String {
    fn from(value: Ident) -> Self {
        value.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A table name, optionally schema-qualified (`schema.table`). Without a
/// schema it resolves through the connection's search_path, like the
/// service's own queries do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TableName {
    pub schema: Option<Ident>,
    pub table: Ident,
}

impl TableName {
    pub fn new(name: &str) -> Result<Self, IdentError> {
        match name.split_once('.') {
            Some((schema, table)) => Ok(TableName {
                schema: Some(Ident::new(schema)?),
                table: Ident::new(table)?,
            }),
            None => Ok(TableName {
                schema: None,
                table: Ident::new(name)?,
            }),
        }
    }

    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", schema.quoted(), self.table.quoted()),
            None => self.table.quoted(),
        }
    }
}

impl TryFrom<String> for TableName {
    type Error = IdentError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TableName::new(&value)
    }
}

impl From<TableName> for String {
    fn from(value: TableName) -> Self {
        value.to_string()
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => write!(f, "{}", self.table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_are_quoted() {
        assert_eq!(Ident::new("client_key").unwrap().quoted(), "\"client_key\"");
        assert_eq!(Ident::new("_x9").unwrap().as_str(), "_x9");
        assert_eq!(
            TableName::new("legacy.client_old").unwrap().quoted(),
            "\"legacy\".\"client_old\""
        );
    }

    #[test]
    fn anything_that_could_carry_sql_is_refused() {
        for bad in [
            "",
            "1abc",
            "a b",
            "a\"b",
            "a;drop table x",
            "a-b",
            "é",
            "x)--",
            "a.b.c",
        ] {
            assert!(TableName::new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Ident::new(&"a".repeat(64)).is_err());
        assert!(Ident::new("a.b").is_err());
    }
}
