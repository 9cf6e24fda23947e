//! Logs and progress on stderr. Everything the harness says is a `tracing`
//! event: `info` for what a user must see, `debug` for detail, in spans per
//! phase. A span with a `what` field is a long step: a `wait` (what it waits
//! for; its `observed` events carry the `last` observation), a `download`
//! (its events carry `bytes` of `total`), creating the kind cluster, building
//! the image. On a terminal each long step is a live line ([`line`]) below the
//! log lines; anywhere else, and with `-q`, only the log lines, one per event,
//! with no control characters ([`display`] decides).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// What stderr shows: live lines for long steps or not, colours or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Display {
    pub(crate) live_lines: bool,
    pub(crate) colour: bool,
}

/// Live lines only on a terminal that can redraw a line (not `TERM=dumb`)
/// and without `-q`; colours only on such a terminal without `NO_COLOR`
/// (set and not empty, as no-color.org says).
pub(crate) fn display(
    stderr_is_terminal: bool,
    quiet: bool,
    term: Option<&str>,
    no_color: Option<&str>,
) -> Display {
    let redraws = stderr_is_terminal && term != Some("dumb");
    Display {
        live_lines: redraws && !quiet,
        colour: redraws && no_color.is_none_or(str::is_empty),
    }
}

/// Install the subscriber: `-q` warnings and errors only, `-v` the harness's
/// debug lines (with time, level and module), `-vv` the libraries' too;
/// `RUST_LOG` wins when set. `timed`: plain lines carry the time too (cluster
/// steps take minutes).
pub(crate) fn init(verbose: u8, quiet: bool, timed: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "mtls_e2e=info,warn",
        (false, 1) => "mtls_e2e=debug,warn",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let shown = display(
        std::io::stderr().is_terminal(),
        quiet,
        std::env::var("TERM").ok().as_deref(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    let lines = shown.live_lines.then(MultiProgress::new);
    let writer = match &lines {
        Some(multi) => BoxMakeWriter::new(AboveLiveLines(multi.clone())),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let clock = || {
        tracing_subscriber::fmt::time::UtcTime::new(time::macros::format_description!(
            "[hour]:[minute]:[second]"
        ))
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(shown.colour);
    // Plain lines read as the messages do (`cleaned up ...`); -v adds time, level and module.
    let fmt = match (verbose, timed) {
        (0, false) => layer
            .without_time()
            .with_target(false)
            .with_level(false)
            .boxed(),
        (0, true) => layer
            .with_timer(clock())
            .with_target(false)
            .with_level(false)
            .boxed(),
        _ => layer.with_timer(clock()).boxed(),
    };
    // The live lines see the harness's own events whatever the log filter shows.
    let live = lines.map(|multi| {
        LiveLines { multi }.with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target().starts_with("mtls_e2e")
        }))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(live)
        .try_init();
}

/// A long step, as its live line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Wait {
        what: String,
        last: String,
    },
    Download {
        what: String,
        bytes: u64,
        total: u64,
    },
    Other {
        name: &'static str,
        what: String,
    },
}

impl Step {
    /// The step a span is, if it is a long one (it has a `what`).
    fn of(name: &'static str, fields: Fields) -> Option<Step> {
        let what = fields.what?;
        Some(match name {
            "wait" => Step::Wait {
                what,
                last: fields.last.unwrap_or_else(|| "nothing yet".into()),
            },
            "download" => Step::Download {
                what,
                bytes: fields.bytes.unwrap_or(0),
                total: fields.total.unwrap_or(0),
            },
            _ => Step::Other { name, what },
        })
    }

    /// What an event inside the step says about it.
    fn update(&mut self, fields: Fields) {
        match self {
            Step::Wait { last, .. } => {
                if let Some(seen) = fields.last {
                    *last = seen;
                }
            }
            Step::Download { bytes, total, .. } => {
                *bytes = fields.bytes.unwrap_or(*bytes);
                *total = fields.total.unwrap_or(*total);
            }
            Step::Other { .. } => {}
        }
    }
}

/// The live line of `step`, `elapsed` after it started.
fn line(step: &Step, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    match step {
        Step::Wait { what, last } => format!("waiting for {what} ({seconds}s): {last}"),
        Step::Download { what, bytes, total } => format!(
            "downloading {what}: {} of {} KiB ({seconds}s)",
            bytes / 1024,
            total / 1024
        ),
        Step::Other { name, what } => format!("{name}: {what} ({seconds}s)"),
    }
}

/// The fields of a span or event that a live line shows.
#[derive(Default)]
struct Fields {
    what: Option<String>,
    last: Option<String>,
    bytes: Option<u64>,
    total: Option<u64>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "what" => self.what = Some(value.to_string()),
            "last" => self.last = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "bytes" => self.bytes = Some(value),
            "total" => self.total = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields arrive here; their Debug is their Display.
        self.record_str(field, &format!("{value:?}"));
    }
}

/// The live lines of the long steps under way, one per span.
struct LiveLines {
    multi: MultiProgress,
}

/// A long step's line, kept in its span.
struct Live {
    bar: ProgressBar,
    step: Arc<Mutex<Step>>,
}

/// A spinner, then the step's line.
const TEMPLATE: &str = "{spinner} {line}";

/// Each redraw asks [`line`] what the step says now.
fn style(step: Arc<Mutex<Step>>) -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "line",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                if let Ok(step) = step.lock() {
                    let _ = w.write_str(&line(&step, state.elapsed()));
                }
            },
        )
}

impl<S> Layer<S> for LiveLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let (Some(step), Some(span)) = (Step::of(attrs.metadata().name(), fields), ctx.span(id))
        else {
            return;
        };
        let step = Arc::new(Mutex::new(step));
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(style(step.clone()));
        bar.enable_steady_tick(Duration::from_millis(200));
        span.extensions_mut().insert(Live { bar, step });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(live) = span.extensions().get::<Live>() {
                let mut fields = Fields::default();
                event.record(&mut fields);
                if let Ok(mut step) = live.step.lock() {
                    step.update(fields);
                }
                return;
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(live) = span.extensions_mut().remove::<Live>()
        {
            live.bar.finish_and_clear();
        }
    }
}

/// Log lines on a terminal with live lines: each is printed above them.
#[derive(Clone)]
struct AboveLiveLines(MultiProgress);

impl Write for AboveLiveLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for AboveLiveLines {
    type Writer = AboveLiveLines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_lines_only_on_a_terminal_that_redraws_and_without_quiet() {
        let shown = |tty, quiet, term, no_color| display(tty, quiet, term, no_color);
        let both = Display {
            live_lines: true,
            colour: true,
        };
        assert_eq!(shown(true, false, Some("xterm-256color"), None), both);
        assert_eq!(shown(true, false, None, None), both);
        let plain = Display {
            live_lines: false,
            colour: false,
        };
        // CI, pipes, the tests: plain lines.
        assert_eq!(shown(false, false, Some("xterm"), None), plain);
        assert_eq!(shown(true, false, Some("dumb"), None), plain);
        // -q: the results and errors only, still in colour on a terminal.
        assert_eq!(
            shown(true, true, Some("xterm"), None),
            Display {
                live_lines: false,
                colour: true
            }
        );
        // NO_COLOR takes the colours, not the live lines; an empty one is unset.
        assert_eq!(
            shown(true, false, Some("xterm"), Some("1")),
            Display {
                live_lines: true,
                colour: false
            }
        );
        assert_eq!(shown(true, false, Some("xterm"), Some("")), both);
    }

    #[test]
    fn a_wait_says_what_for_how_long_and_what_it_last_saw() {
        let mut step = Step::of(
            "wait",
            Fields {
                what: Some("Certificate team/web Ready".into()),
                ..Fields::default()
            },
        )
        .expect("a long step");
        assert_eq!(
            line(&step, Duration::from_secs(3)),
            "waiting for Certificate team/web Ready (3s): nothing yet"
        );
        step.update(Fields {
            last: Some("Issuing: the certificate request is pending".into()),
            ..Fields::default()
        });
        assert_eq!(
            line(&step, Duration::from_millis(42_900)),
            "waiting for Certificate team/web Ready (42s): Issuing: the certificate request is pending"
        );
    }

    #[test]
    fn a_download_says_its_bytes_of_the_total() {
        let mut step = Step::of(
            "download",
            Fields {
                what: Some("cert-manager.yaml".into()),
                total: Some(1_000 * 1024),
                ..Fields::default()
            },
        )
        .expect("a long step");
        step.update(Fields {
            bytes: Some(256 * 1024),
            ..Fields::default()
        });
        assert_eq!(
            line(&step, Duration::from_secs(2)),
            "downloading cert-manager.yaml: 256 of 1000 KiB (2s)"
        );
    }

    #[test]
    fn the_template_reads() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn only_spans_with_a_what_are_long_steps() {
        assert_eq!(Step::of("preflight", Fields::default()), None);
        let step = Step::of(
            "create",
            Fields {
                what: Some("kind cluster mtls-e2e (Kubernetes 1.34)".into()),
                ..Fields::default()
            },
        )
        .expect("a long step");
        assert_eq!(
            line(&step, Duration::from_secs(61)),
            "create: kind cluster mtls-e2e (Kubernetes 1.34) (61s)"
        );
    }

    /// The layer's plumbing: a span with a `what` gets a live line, an event
    /// anywhere below it updates that line, and closing the span ends it.
    #[test]
    fn a_long_steps_events_reach_its_live_line() {
        use tracing_subscriber::Registry;
        let multi = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden());
        let subscriber = tracing_subscriber::registry().with(LiveLines { multi });
        tracing::subscriber::with_default(subscriber, || {
            let step_of = |id: &Id| {
                tracing::dispatcher::get_default(|d| {
                    let registry = d.downcast_ref::<Registry>().expect("a registry");
                    let span = registry.span(id)?;
                    let extensions = span.extensions();
                    let live = extensions.get::<Live>()?;
                    live.step.lock().ok().map(|s| s.clone())
                })
            };
            let wait = tracing::info_span!("wait", what = "Secret team/s");
            let id = wait.id().expect("enabled");
            wait.in_scope(|| {
                let _inner = tracing::info_span!("apply").entered();
                tracing::debug!(last = "does not exist yet", "observed");
            });
            assert_eq!(
                step_of(&id),
                Some(Step::Wait {
                    what: "Secret team/s".into(),
                    last: "does not exist yet".into()
                })
            );
            let plain = tracing::info_span!("preflight");
            assert_eq!(step_of(&plain.id().expect("enabled")), None);
            drop(wait);
            assert_eq!(step_of(&id), None, "closed");
        });
    }
}
