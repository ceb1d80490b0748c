//! Row keys and link values. lethe names a row by its table's primary key
//! (one column or several, of any type), never by a link that may repeat,
//! and follows links by value. Both travel as text: read with a cast to
//! text, bound back as a list of text cast to the column's own type (so
//! the service's indexes are used).
//!
//! The rules this module keeps: a composite key is encoded as a JSON array
//! of its columns' texts (a one-column key is its text alone, so manifests
//! stay readable); a value is bound to a column only after [`ValueKind`]
//! accepted it for that column's type, so a text column holding `"abc"`
//! where digits were declared is reported, not a failed statement; and a
//! number is accepted only in its canonical spelling (`42`, not `042`), so
//! comparing it as text with a text column is exact.

use super::dialect::Dialect;
use super::ident::Ident;

/// What values a key or link column takes, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// An integer type, with its range.
    Integer {
        min: i64,
        max: i64,
    },
    /// `numeric`/`decimal`.
    Numeric,
    Uuid,
    /// Any text.
    Text,
    /// Anything else (timestamps, dates in a composite key): values come
    /// from the database's own text output of the same column, which casts
    /// back exactly.
    Other,
}

impl ValueKind {
    /// The kind of a column of `sql_type` (as the database reports it).
    pub fn of(sql_type: &str, dialect: Dialect) -> ValueKind {
        let ty = sql_type.to_ascii_lowercase();
        match dialect {
            Dialect::Postgres => match ty.as_str() {
                "smallint" | "int2" | "smallserial" => ValueKind::Integer {
                    min: i16::MIN.into(),
                    max: i16::MAX.into(),
                },
                "integer" | "int" | "int4" | "serial" => ValueKind::Integer {
                    min: i32::MIN.into(),
                    max: i32::MAX.into(),
                },
                "bigint" | "int8" | "bigserial" => ValueKind::Integer {
                    min: i64::MIN,
                    max: i64::MAX,
                },
                "uuid" => ValueKind::Uuid,
                "text" | "citext" | "name" => ValueKind::Text,
                _ if ty.starts_with("numeric") || ty.starts_with("decimal") => ValueKind::Numeric,
                _ if ty.starts_with("character") || ty.starts_with("varchar") => ValueKind::Text,
                _ => ValueKind::Other,
            },
            // SQLite's affinity rules, in its documented order; a declared
            // `uuid` stores text.
            Dialect::Sqlite => {
                if ty.contains("int") {
                    ValueKind::Integer {
                        min: i64::MIN,
                        max: i64::MAX,
                    }
                } else if ty.contains("char") || ty.contains("clob") || ty.contains("text") {
                    ValueKind::Text
                } else if ty.contains("uuid") {
                    ValueKind::Uuid
                } else if ty.is_empty() || ty.contains("blob") {
                    ValueKind::Text
                } else {
                    ValueKind::Other
                }
            }
        }
    }

    /// The kind a link's declared `cast` names; None when lethe does not
    /// know the type.
    pub fn of_cast(cast: &str) -> Option<ValueKind> {
        match ValueKind::of(cast, Dialect::Postgres) {
            ValueKind::Other => None,
            kind => Some(kind),
        }
    }

    /// Whether two kinds compare without a declared cast.
    pub fn same_family(self, other: ValueKind) -> bool {
        matches!(
            (self, other),
            (ValueKind::Integer { .. }, ValueKind::Integer { .. })
                | (ValueKind::Numeric, ValueKind::Numeric)
                | (ValueKind::Uuid, ValueKind::Uuid)
                | (ValueKind::Text, ValueKind::Text)
                | (ValueKind::Other, ValueKind::Other)
        )
    }

    /// Whether `value` is a value of this kind, in its canonical spelling.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            ValueKind::Integer { min, max } => canonical_integer(value)
                .is_some_and(|n| n >= i128::from(min) && n <= i128::from(max)),
            ValueKind::Numeric => canonical_decimal(value),
            ValueKind::Uuid => uuid::Uuid::try_parse(value)
                .is_ok_and(|parsed| parsed.hyphenated().to_string() == value),
            ValueKind::Text | ValueKind::Other => true,
        }
    }

    /// Whether a member key given by an operator can be a value of this
    /// kind at all (more lenient than [`ValueKind::accepts`]: the database
    /// casts it, so `+7` or an upper-case uuid are fine).
    pub fn can_hold(self, value: &str) -> bool {
        match self {
            ValueKind::Integer { min, max } => value
                .trim()
                .parse::<i128>()
                .is_ok_and(|n| n >= i128::from(min) && n <= i128::from(max)),
            ValueKind::Numeric => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
            ValueKind::Uuid => uuid::Uuid::try_parse(value.trim()).is_ok(),
            ValueKind::Text | ValueKind::Other => true,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ValueKind::Integer { .. } => "an integer",
            ValueKind::Numeric => "a decimal number",
            ValueKind::Uuid => "a uuid",
            ValueKind::Text => "text",
            ValueKind::Other => "a value",
        }
    }
}

/// `-?(0|[1-9][0-9]*)`, as a number.
fn canonical_integer(value: &str) -> Option<i128> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let canonical = !digits.is_empty()
        && digits.len() <= 20
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && value != "-0";
    canonical.then(|| value.parse().ok()).flatten()
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`.
fn canonical_decimal(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    canonical_integer(whole).is_some()
        && (!value.contains('.')
            || (!fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit())))
}

/// One column of a key, with its type as the database reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: Ident,
    pub sql_type: String,
}

/// A table's primary key (or unique key): how its rows are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey {
    pub columns: Vec<KeyColumn>,
}

/// One bound value of a compiled statement, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    /// A list of texts: a `text[]` on PostgreSQL, a JSON array on SQLite.
    TextList(Vec<String>),
}

impl RowKey {
    /// The key's columns read as text, for a SELECT list, aliased
    /// `lethe_key_<i>`; `table` is the quoted table (or alias) to qualify them.
    pub fn select_text(&self, table: &str, dialect: Dialect) -> Vec<String> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{} AS lethe_key_{i}",
                    dialect.text(&format!("{table}.{}", c.name.quoted()))
                )
            })
            .collect()
    }

    /// `ORDER BY` the key.
    pub fn order_by(&self, table: &str) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{table}.{}", c.name.quoted()))
            .collect();
        columns.join(", ")
    }

    /// The encoded key of a row from its key columns' texts.
    pub fn encode(&self, values: Vec<String>) -> String {
        if self.columns.len() == 1 {
            values.into_iter().next().unwrap_or_default()
        } else {
            serde_json::to_string(&values).expect("strings serialise")
        }
    }

    /// The key columns' texts of an encoded key.
    pub fn decode(&self, encoded: &str) -> Option<Vec<String>> {
        if self.columns.len() == 1 {
            return Some(vec![encoded.to_owned()]);
        }
        let values: Vec<String> = serde_json::from_str(encoded).ok()?;
        (values.len() == self.columns.len()).then_some(values)
    }

    /// How many parameters [`RowKey::match_sql`] takes.
    pub fn match_params(&self, dialect: Dialect) -> usize {
        match dialect {
            Dialect::Postgres => self.columns.len(),
            Dialect::Sqlite => 1,
        }
    }

    /// A predicate: the row's key is one of a list of keys bound from
    /// parameter `$first` on ([`RowKey::match_args`]).
    pub fn match_sql(&self, table: &str, dialect: Dialect, first: usize) -> String {
        if let [column] = self.columns.as_slice() {
            return dialect.in_ids(
                &format!("{table}.{}", column.name.quoted()),
                &column.sql_type,
                first,
            );
        }
        let tuple: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{table}.{}", c.name.quoted()))
            .collect();
        let source = match dialect {
            Dialect::Postgres => {
                let arrays: Vec<String> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("CAST(${} AS {}[])", first + i, c.sql_type))
                    .collect();
                format!("SELECT * FROM unnest({})", arrays.join(", "))
            }
            Dialect::Sqlite => {
                let parts: Vec<String> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        dialect.cast_value(&format!("json_extract(value, '$[{i}]')"), &c.sql_type)
                    })
                    .collect();
                format!("SELECT {} FROM json_each(${first})", parts.join(", "))
            }
        };
        format!("({}) IN ({source})", tuple.join(", "))
    }

    /// The bound values for [`RowKey::match_sql`]; keys that do not decode
    /// are left out (they name no row).
    pub fn match_args(&self, keys: &[String], dialect: Dialect) -> Vec<Arg> {
        if self.columns.len() == 1 {
            return vec![Arg::TextList(keys.to_vec())];
        }
        let decoded: Vec<Vec<String>> = keys.iter().filter_map(|k| self.decode(k)).collect();
        match dialect {
            Dialect::Postgres => (0..self.columns.len())
                .map(|i| Arg::TextList(decoded.iter().map(|values| values[i].clone()).collect()))
                .collect(),
            Dialect::Sqlite => vec![Arg::Text(
                serde_json::to_string(&decoded).expect("strings serialise"),
            )],
        }
    }

    /// How many parameters [`RowKey::after_sql`] takes.
    pub fn after_params(&self, dialect: Dialect) -> usize {
        self.match_params(dialect)
    }

    /// A predicate: no cursor, or the row's key sorts after the cursor's
    /// (bound from `$first` on by [`RowKey::after_args`]).
    pub fn after_sql(&self, table: &str, dialect: Dialect, first: usize) -> String {
        let tuple: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{table}.{}", c.name.quoted()))
            .collect();
        let bounds: Vec<String> = match dialect {
            Dialect::Postgres => self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| dialect.param_as(first + i, &c.sql_type))
                .collect(),
            Dialect::Sqlite if self.columns.len() == 1 => {
                vec![dialect.param_as(first, &self.columns[0].sql_type)]
            }
            Dialect::Sqlite => self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    dialect.cast_value(&format!("json_extract(${first}, '$[{i}]')"), &c.sql_type)
                })
                .collect(),
        };
        if self.columns.len() == 1 {
            format!(
                "({} OR {} > {})",
                dialect.param_is_null(first),
                tuple[0],
                bounds[0]
            )
        } else {
            format!(
                "({} OR ({}) > ({}))",
                dialect.param_is_null(first),
                tuple.join(", "),
                bounds.join(", ")
            )
        }
    }

    /// The bound values for [`RowKey::after_sql`].
    pub fn after_args(&self, after: Option<&str>, dialect: Dialect) -> Vec<Arg> {
        match dialect {
            Dialect::Sqlite => vec![Arg::OptText(after.map(str::to_owned))],
            Dialect::Postgres => {
                let decoded = after.and_then(|key| self.decode(key));
                (0..self.columns.len())
                    .map(|i| Arg::OptText(decoded.as_ref().map(|values| values[i].clone())))
                    .collect()
            }
        }
    }

    /// The key's column names, for messages: `id` or `(id, created_at)`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        match names.as_slice() {
            [only] => (*only).to_owned(),
            _ => format!("({})", names.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(columns: &[(&str, &str)]) -> RowKey {
        RowKey {
            columns: columns
                .iter()
                .map(|(name, ty)| KeyColumn {
                    name: Ident::new(name).unwrap(),
                    sql_type: (*ty).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn values_are_accepted_only_in_canonical_spelling() {
        let bigint = ValueKind::of("bigint", Dialect::Postgres);
        assert!(bigint.accepts("42") && bigint.accepts("-7") && bigint.accepts("0"));
        for bad in ["042", "+42", "", "4 2", "abc", "-0", "99999999999999999999"] {
            assert!(!bigint.accepts(bad), "{bad:?}");
        }
        let int4 = ValueKind::of("integer", Dialect::Postgres);
        assert!(!int4.accepts("3000000000"));
        let uuid = ValueKind::of("uuid", Dialect::Postgres);
        assert!(uuid.accepts("0b9e5f5c-1f0b-4c47-9d0e-2b8f4a1c6d3e"));
        assert!(!uuid.accepts("0B9E5F5C-1F0B-4C47-9D0E-2B8F4A1C6D3E"));
        assert!(uuid.can_hold("0B9E5F5C-1F0B-4C47-9D0E-2B8F4A1C6D3E"));
        assert!(!uuid.can_hold("member-1"));
        assert!(ValueKind::of("character varying(64)", Dialect::Postgres).accepts("042"));
        assert!(ValueKind::of("numeric(10,2)", Dialect::Postgres).accepts("1.50"));
        assert_eq!(ValueKind::of("uuid", Dialect::Sqlite), ValueKind::Uuid);
    }

    #[test]
    fn composite_keys_round_trip_and_bind_per_column() {
        let k = key(&[("id", "bigint"), ("created_at", "timestamp with time zone")]);
        let encoded = k.encode(vec!["5".into(), "2026-01-01 00:00:00+00".into()]);
        assert_eq!(encoded, r#"["5","2026-01-01 00:00:00+00"]"#);
        assert_eq!(k.decode(&encoded).unwrap()[1], "2026-01-01 00:00:00+00");
        assert_eq!(
            k.match_sql("t", Dialect::Postgres, 3),
            "(t.\"id\", t.\"created_at\") IN (SELECT * FROM unnest(CAST($3 AS bigint[]), CAST($4 AS timestamp with time zone[])))"
        );
        assert_eq!(
            k.match_args(std::slice::from_ref(&encoded), Dialect::Postgres),
            vec![
                Arg::TextList(vec!["5".into()]),
                Arg::TextList(vec!["2026-01-01 00:00:00+00".into()])
            ]
        );
        assert!(
            k.match_sql("t", Dialect::Sqlite, 1)
                .contains("json_each($1)")
        );
        let single = key(&[("id", "bigint")]);
        assert_eq!(single.encode(vec!["5".into()]), "5");
        assert_eq!(single.decode("5").unwrap(), vec!["5".to_owned()]);
    }
}
