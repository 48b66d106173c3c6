//! `--log.format=logfmt`: one line per event, `ts=… level=… caller=… msg="…" key=value`,
//! as go-kit's logger writes it for the Prometheus exporters, so Loki's `| logfmt` and
//! other logfmt parsers read every field. Keeps no state.
//!
//! Quoting follows go-logfmt: a value is bare unless it is empty or holds a space, `=`,
//! `"` or a control character; quoted values escape `\`, `"`, and control characters
//! (`\n`, `\r`, `\t`, else `\u00XX`). Keys keep only characters logfmt allows in a key.
//! Fields of the spans an event is in follow the event's own fields.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter for `tracing_subscriber::fmt().event_format(Logfmt)`; pair it
/// with `.fmt_fields(LogfmtFields)` so span fields are written in logfmt too.
#[derive(Debug, Default, Clone, Copy)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        let caller = match (meta.file(), meta.line()) {
            (Some(file), Some(line)) => format!("{}:{line}", file.strip_prefix("src/").unwrap_or(file)),
            _ => meta.target().to_owned(),
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = String::new();
        pair(&mut line, "ts", &ts);
        pair(&mut line, "level", &meta.level().as_str().to_ascii_lowercase());
        pair(&mut line, "caller", &caller);
        pair(&mut line, "msg", fields.message.as_deref().unwrap_or(""));
        line.push_str(&fields.line);
        if let Some(scope) = ctx.event_scope() {
            // Outermost span first, as a reader expects context to widen leftwards.
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
                    line.push(' ');
                    line.push_str(f);
                }
            }
        }
        writeln!(w, "{line}")
    }
}

/// Span fields in logfmt, for `.fmt_fields(LogfmtFields)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = Fields::default();
        fields.record(&mut v);
        if let Some(m) = v.message {
            pair(&mut v.line, "msg", &m);
        }
        w.write_str(v.line.trim_start())
    }
}

/// An event's message apart, its other fields as ` key=value` pairs.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    line: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.line.push(' ');
            pair(&mut self.line, field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Appends `key=value` to `out`, preceded by a space unless `out` is empty.
fn pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push(' ');
    }
    // tracing's raw identifiers (`r#type`) lose their prefix.
    let key = key.strip_prefix("r#").unwrap_or(key);
    let start = out.len();
    out.extend(key.chars().filter(|&c| c > ' ' && c != '=' && c != '"' && c != '\u{7f}'));
    if out.len() == start {
        out.push('_');
    }
    out.push('=');
    let needs_quotes =
        value.is_empty() || value.chars().any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn check(key: &str, value: &str, expected: &str) {
        let mut out = String::new();
        pair(&mut out, key, value);
        assert_eq!(out, expected, "{key:?} = {value:?}");
    }

    #[test]
    fn quoting_and_escaping() {
        check("node", "pg-1", "node=pg-1");
        check("path", "/a/b.yml", "path=/a/b.yml");
        check("msg", "Listening", "msg=Listening");
        check("msg", "Invalid configuration", r#"msg="Invalid configuration""#);
        check("empty", "", r#"empty="""#);
        check("eq", "a=b", r#"eq="a=b""#);
        check("q", r#"say "hi""#, r#"q="say \"hi\"""#);
        check("bs", r"a\b c", r#"bs="a\\b c""#);
        check("nl", "one\ntwo", r#"nl="one\ntwo""#);
        check("tab", "a\tb", r#"tab="a\tb""#);
        check("bell", "a\u{7}", r#"bell="a\u0007""#);
        check("utf8", "régión", "utf8=régión");
        check("r#type", "x", "type=x");
        check("a b=\"c\"", "x", "abc=x");
        check(" ", "x", "_=x");
    }

    /// A writer that keeps what the subscriber wrote.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_event_in_a_span_is_one_logfmt_line() {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Logfmt)
            .fmt_fields(LogfmtFields)
            .with_writer(move || writer.clone())
            .finish();
        let mut at = 0;
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("reload", source = "sighup");
            let _in = span.enter();
            let error = "connection refused";
            at = line!() + 1;
            tracing::warn!(node = "pg 1", attempts = 3, error = %error, "Collector failed");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line = text.strip_suffix('\n').expect("one line ending in a newline");
        assert!(!line.contains('\n'), "{line}");
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(ts.starts_with("ts=20") && ts.ends_with('Z'), "{ts}");
        let caller = format!("caller=cli/logfmt.rs:{at}");
        assert_eq!(
            rest,
            format!(
                r#"level=warn {caller} msg="Collector failed" node="pg 1" attempts=3 error="connection refused" source=sighup"#
            )
        );
    }
}
