//! Logs as go-hclog JSON lines on stderr, which Terraform parses and shows
//! under TF_LOG / TF_LOG_PROVIDER. The timestamp layout must be exact (six
//! fractional digits), or Terraform treats the line as plain text.

use std::fmt::Write as _;
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// The level Terraform asked for: TF_LOG_PROVIDER, else TF_LOG; default warn.
pub fn level_from_env(provider: Option<&str>, global: Option<&str>) -> Level {
    let v = provider
        .filter(|s| !s.is_empty())
        .or(global.filter(|s| !s.is_empty()))
        .unwrap_or("warn");
    match v.to_ascii_lowercase().as_str() {
        "trace" | "json" => Level::TRACE,
        "debug" => Level::DEBUG,
        "info" => Level::INFO,
        "error" => Level::ERROR,
        _ => Level::WARN,
    }
}

pub fn init() {
    let level = level_from_env(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
    );
    let subscriber = tracing_subscriber::registry().with(HclogLayer { max: level });
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct HclogLayer {
    max: Level,
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        // NOTE: other crates (hyper, h2, the AWS SDK) log request and response
        // details at debug/trace, an ECR token among them; they get warn at most.
        let ours = meta.target().starts_with("stevedore")
            || meta.target().starts_with("terraform_provider_stevedore");
        let max = if ours {
            self.max
        } else {
            self.max.min(Level::WARN)
        };
        *meta.level() <= max
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let line = format_line(event);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }
}

fn format_line(event: &Event<'_>) -> String {
    let mut fields = serde_json::Map::new();
    let mut v = JsonVisitor {
        fields: &mut fields,
        message: String::new(),
    };
    event.record(&mut v);
    let message = std::mem::take(&mut v.message);
    let level = match *event.metadata().level() {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    };
    fields.insert("@message".into(), message.into());
    fields.insert("@level".into(), level.into());
    fields.insert("@module".into(), "stevedore".into());
    fields.insert("@timestamp".into(), timestamp().into());
    let mut s = serde_json::Value::Object(fields).to_string();
    s.push('\n');
    s
}

/// `2006-01-02T15:04:05.000000Z07:00` in Go's layout language.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut s = String::with_capacity(32);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    );
    s
}

struct JsonVisitor<'a> {
    fields: &'a mut serde_json::Map<String, serde_json::Value>,
    message: String,
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.insert(field.name().to_string(), value.into());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_go_hclog_layout() {
        let t = timestamp();
        let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$").unwrap();
        assert!(re.is_match(&t), "{t}");
    }

    #[test]
    fn numbers_stay_numbers() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Keep(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Keep {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                self.0.lock().unwrap().push(format_line(event));
            }
        }
        let subscriber = tracing_subscriber::registry().with(Keep(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(build_s = 1.5, layers = 3u64, "timing");
        });
        let line: serde_json::Value = serde_json::from_str(&lines.lock().unwrap()[0]).unwrap();
        assert_eq!(line["build_s"], 1.5);
        assert_eq!(line["layers"], 3);
    }

    #[test]
    fn levels_follow_tf_log_provider_then_tf_log() {
        assert_eq!(level_from_env(Some("debug"), Some("error")), Level::DEBUG);
        assert_eq!(level_from_env(None, Some("TRACE")), Level::TRACE);
        assert_eq!(level_from_env(Some(""), Some("json")), Level::TRACE);
        assert_eq!(level_from_env(None, None), Level::WARN);
    }
}
