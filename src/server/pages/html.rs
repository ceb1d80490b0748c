//! The pages' HTML: escaping, the common layout (header, language switch,
//! sign-out form), and small formatters. Every value from the database
//! goes through [`esc`]; the pages carry no script and load nothing from
//! elsewhere (the styles are inline).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::labels::Lang;
use crate::references::percent::encode_key;
use crate::server::auth::Session;
use crate::store::RequestRecord;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// How the pages show times: in `server.time_zone`, with its abbreviation
/// (`2026-11-29 23:03:05 KST`).
#[derive(Debug, Clone, Copy)]
pub struct Times(pub chrono_tz::Tz);

impl Times {
    /// A time, or `-` for none.
    pub fn at(self, at: Option<DateTime<Utc>>) -> String {
        at.map_or_else(
            || "-".to_owned(),
            |at| {
                at.with_timezone(&self.0)
                    .format("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            },
        )
    }
}

/// A duration between two times as `1h 02m 03s`; `-` when either is missing.
pub fn took(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    let (Some(from), Some(to)) = (from, to) else {
        return "-".to_owned();
    };
    let millis = (to - from).num_milliseconds().max(0);
    let secs = millis / 1000;
    match secs {
        0 => format!("{:.1}s", millis as f64 / 1000.0),
        1..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!(
            "{}h {:02}m {:02}s",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        ),
    }
}

/// `batch k of n` for an active request's phase.
pub fn progress(lang: Lang, record: &RequestRecord) -> String {
    let t = lang.text();
    match (record.state.phase(), record.batch_total) {
        (Some(_), Some(total)) => format!("{} {} / {}", t.batch_of, record.batch_done, total),
        (Some(_), None) if record.batch_done > 0 => format!("{} {}", t.batch_of, record.batch_done),
        _ => "-".to_owned(),
    }
}

/// The state, with `overdue` or `finished late` when it applies, as a
/// classed span (the colour says which).
pub fn state_badge(lang: Lang, record: &RequestRecord) -> String {
    let t = lang.text();
    let mut out = format!(
        "<span class=\"state s-{0}\" data-state=\"{0}\">{1}</span>",
        record.state.as_str(),
        lang.state_name(record.state)
    );
    if record.overdue {
        let _ = write!(out, " <span class=\"flag\">{}</span>", t.overdue);
    } else if record.finished_late {
        let _ = write!(out, " <span class=\"flag late\">{}</span>", t.finished_late);
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Noto Sans KR','Malgun Gothic','Apple SD Gothic Neo','NanumGothic',sans-serif;margin:0;color:#1d232a;background:#f6f7f9}\
header{background:#1d2b3a;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}\
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto;font-size:.9rem;opacity:.85}\
header form{display:inline;margin:0}header button{font:inherit;font-size:.85rem}\
main{padding:1rem 1.2rem;max-width:1200px}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}\
th,td{border:1px solid #d9dee4;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#eef1f5}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.state{display:inline-block;padding:0 .4rem;border-radius:.3rem;background:#e3e8ee;font-family:ui-monospace,monospace;font-size:.85rem}\
.s-failed{background:#f8d0d0}.s-done{background:#d4efd9}.s-cancelled,.s-coalesced{background:#eee}\
.flag{color:#a00;font-weight:700}.flag.late{color:#a60}.error{color:#a00}.note{color:#555;font-size:.9rem}\
.notice{background:#fff7d6;border:1px solid #e6d58a;padding:.5rem .8rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;background:#fff;padding:.8rem;border:1px solid #d9dee4}\
dt{font-weight:600}dd{margin:0}code{font-size:.85rem}form.inline{display:inline}\
";

/// A whole page: `body` inside the layout. `refresh` reloads it every
/// that many seconds (live progress, without a script).
pub fn page(
    lang: Lang,
    heading: &str,
    session: Option<&Session>,
    back_to: &str,
    refresh: Option<u32>,
    body: &str,
) -> String {
    let t = lang.text();
    let other = lang.other();
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        code = lang.code()
    );
    if let Some(seconds) = refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    }
    let _ = write!(
        out,
        "<title>{heading} · {title}</title><style>{STYLE}</style></head><body><header>\
         <a href=\"/\">{title}</a>",
        heading = esc(heading),
        title = t.title
    );
    if let Some(session) = session {
        let _ = write!(
            out,
            "<a href=\"/\" id=\"nav-queue\">{queue}</a><a href=\"/register\" id=\"nav-register\">{register}</a>",
            queue = t.queue,
            register = t.register
        );
        let _ = write!(
            out,
            "<span class=\"who\">{signed} {name} ({role})</span>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">{out_label}</button></form>",
            signed = t.signed_in_as,
            name = esc(&session.caller.name),
            role = session.caller.role,
            csrf = esc(&session.csrf),
            out_label = t.sign_out
        );
    }
    let _ = write!(
        out,
        "<a href=\"/lang/{code}?back={back}\" lang=\"{code}\" id=\"lang-switch\">{name}</a></header><main>\
         <h1>{heading}</h1>{body}</main></body></html>",
        code = other.code(),
        back = esc(&encode_key(back_to)),
        name = other.text().language_name,
        heading = esc(heading)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn back_links_are_encoded_for_a_query() {
        assert_eq!(
            encode_key("/requests/a?x=1&y=한"),
            "/requests/a%3Fx%3D1%26y%3D%ED%95%9C"
        );
    }

    #[test]
    fn times_are_shown_in_the_configured_zone() {
        let at = DateTime::from_timestamp(1_764_424_985, 0);
        assert_eq!(Times(chrono_tz::UTC).at(at), "2025-11-29 14:03:05 UTC");
        assert_eq!(
            Times(chrono_tz::Asia::Seoul).at(at),
            "2025-11-29 23:03:05 KST"
        );
        assert_eq!(Times(chrono_tz::UTC).at(None), "-");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let start = DateTime::from_timestamp(0, 0);
        let at = |secs| DateTime::from_timestamp(secs, 0);
        assert_eq!(took(start, at(42)), "42s");
        assert_eq!(took(start, at(3 * 60 + 5)), "3m 05s");
        assert_eq!(took(start, at(2 * 3600 + 60 + 1)), "2h 01m 01s");
        assert_eq!(took(start, None), "-");
    }
}
