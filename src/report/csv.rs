//! The record as CSV, for spreadsheets and registers: one line per count
//! (table or bucket, with its method), per foreign-reference total and per
//! anomaly, each line repeating the request's columns so that a register of
//! many requests is the same shape as one record. RFC 4180 quoting.

use chrono::{DateTime, Utc};

use super::{DestructionRecord, Register};

const HEADER: [&str; 20] = [
    "request_id",
    "external_reference",
    "state",
    "outcome",
    "requested_at",
    "started_at",
    "targets_found_at",
    "s3_cleared_at",
    "db_masked_at",
    "finished_at",
    "verification",
    "engine_version",
    "item",
    "name",
    "replica_of",
    "method",
    "count",
    "versions",
    "detail",
    "generated_at",
];

/// One record as CSV, with a header line.
pub fn record_csv(record: &DestructionRecord) -> String {
    let mut out = line(HEADER.iter().map(|s| s.to_string()));
    write_record(&mut out, record);
    out
}

/// A register as CSV: the header once, then every record's lines.
pub fn register_csv(register: &Register) -> String {
    let mut out = line(HEADER.iter().map(|s| s.to_string()));
    for record in &register.records {
        write_record(&mut out, record);
    }
    out
}

fn write_record(out: &mut String, r: &DestructionRecord) {
    let phase_end = |index: usize| r.phases.get(index).and_then(|p| p.finished_at);
    let common = [
        r.request_id.to_string(),
        r.external_reference.clone().unwrap_or_default(),
        r.state.to_string(),
        r.outcome.clone(),
        time(Some(r.requested_at)),
        time(r.started_at),
        time(phase_end(0)),
        time(phase_end(1)),
        time(phase_end(2)),
        time(r.finished_at),
        r.verification.result.clone(),
        r.engine.version.to_owned(),
    ];
    let generated = time(Some(r.generated_at));
    let mut emit = |item: &str,
                    name: &str,
                    replica: &str,
                    method: &str,
                    count: String,
                    versions: String,
                    detail: &str| {
        let fields = common.iter().cloned().chain([
            item.to_owned(),
            name.to_owned(),
            replica.to_owned(),
            method.to_owned(),
            count,
            versions,
            detail.to_owned(),
            generated.clone(),
        ]);
        out.push_str(&line(fields));
    };
    let mut lines = 0;
    for t in &r.tables {
        emit(
            "table",
            &t.table,
            "",
            &t.method,
            t.rows.to_string(),
            String::new(),
            "",
        );
        lines += 1;
    }
    for b in &r.buckets {
        emit(
            "bucket",
            &b.bucket,
            b.replica_of.as_deref().unwrap_or(""),
            &b.method,
            b.objects.to_string(),
            b.versions.map(|v| v.to_string()).unwrap_or_default(),
            "",
        );
        lines += 1;
    }
    if r.foreign_references > 0 {
        emit(
            "foreign",
            "",
            "",
            "retained: foreign",
            r.foreign_references.to_string(),
            String::new(),
            "references outside the service's buckets; never deleted",
        );
        lines += 1;
    }
    for a in &r.anomalies {
        let place = match (&a.table_name, &a.row_id) {
            (Some(table), Some(row)) => format!("{table} row {row}: "),
            (Some(table), None) => format!("{table}: "),
            _ => String::new(),
        };
        emit(
            "anomaly",
            &a.kind,
            "",
            "",
            String::new(),
            String::new(),
            &format!("{place}{}", a.detail),
        );
        lines += 1;
    }
    if lines == 0 {
        emit(
            "none",
            "",
            "",
            "",
            "0".to_owned(),
            String::new(),
            "nothing found to erase",
        );
    }
}

fn time(value: Option<DateTime<Utc>>) -> String {
    value
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn line(fields: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = fields.into_iter().map(|f| quote(&f)).collect();
    let mut out = quoted.join(",");
    out.push_str("\r\n");
    out
}

/// RFC 4180: quote fields holding a comma, quote or line break, doubling
/// quotes inside.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(
            line(["a".to_owned(), "b,c".to_owned(), String::new()]),
            "a,\"b,c\",\r\n"
        );
    }
}
