//! `taskfarm watch UUID`: follow a run until it is complete (or Ctrl-C).
//!
//! A poll thread asks the server for the run every interval and sends the
//! answers over a channel; Ctrl-C sends on the same channel, so the tool stops
//! at once even while a request hangs. On a terminal the progress is an
//! indicatif bar on stdout, the counts, rate and ETA on a line of their own
//! below it (so that the bar keeps its width at 80 columns and from frame to
//! frame); otherwise one plain line per poll, starting with the local time
//! (one JSON object per poll with `--json`). The rate keeps its unit while
//! it stays readable in it. After a lost connection, the first answer says
//! on stderr that the connection is back, and after how long.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use taskfarm_worker::internal::{Result as ClientResult, Run, RunStatus, Settings};

use crate::commands::{checked_status, explain, open, with_not_started};
use crate::failure::{Failure, EXIT_INTERRUPTED};
use crate::format::{self, RateUnit};
use crate::output;
use crate::session;

/// What the main thread waits for.
enum Event {
    /// One poll of the run, and when it was sent.
    Polled(Instant, ClientResult<Value>),
    /// Ctrl-C.
    Interrupted,
}

/// Follows run `uuid`, polling every `interval`, until it is complete.
pub fn watch(
    settings: &Settings,
    uuid: &str,
    interval: Duration,
    json: bool,
) -> Result<(), Failure> {
    let run = open(settings, uuid)?;
    run.connection()
        .set_retries(crate::session::start_watching(settings));
    let (events, received) = mpsc::channel();
    let interrupt = events.clone();
    ctrlc::set_handler(move || {
        let _ = interrupt.send(Event::Interrupted);
    })
    .map_err(|e| Failure::local(format!("cannot catch Ctrl-C: {e}")))?;
    std::thread::spawn(move || poll(&run, interval, &events));

    let mut display = Display::new(json);
    let mut rate = Rate::default();
    loop {
        let event = received
            .recv()
            .map_err(|_| Failure::local("the poll thread stopped"))?;
        match event {
            Event::Interrupted => {
                display.interrupt();
                return Err(Failure::new(EXIT_INTERRUPTED, "interrupted"));
            }
            Event::Polled(_, Err(error)) => {
                display.abandon();
                return Err(explain(error, settings, Some(uuid)));
            }
            Event::Polled(at, Ok(info)) => {
                if let Some(lost) = session::connection_back() {
                    display.note(&format!(
                        "taskfarm: connection back after {}",
                        format::duration(lost)
                    ));
                }
                let status = checked_status(&info, uuid).inspect_err(|_| display.abandon())?;
                rate.add(at, &status);
                let complete = is_complete(&status);
                display.show(&info, &status, &rate, complete)?;
                if complete {
                    display.finish();
                    return Ok(());
                }
            }
        }
    }
}

/// The poll loop: one `GET runs/UUID` per interval until an error or until
/// nobody listens any more.
fn poll(run: &Run, interval: Duration, events: &mpsc::Sender<Event>) {
    loop {
        let at = Instant::now();
        let answer = run.info(None);
        let failed = answer.is_err();
        if events.send(Event::Polled(at, answer)).is_err() || failed {
            return;
        }
        std::thread::sleep(interval.saturating_sub(at.elapsed()));
    }
}

/// A run is complete when every task is done or the run is at 100 %.
pub fn is_complete(status: &RunStatus) -> bool {
    status.num_done >= status.num_tasks || status.percent_done >= 100.0 - 1e-9
}

/// How far the run is, in tasks: `percentDone` of `numTasks`.
fn tasks_done(status: &RunStatus) -> f64 {
    status.percent_done / 100.0 * status.num_tasks as f64
}

/// The recent pace of a run, from the polls of the last minute.
#[derive(Debug, Default)]
pub struct Rate {
    samples: VecDeque<(Instant, f64)>,
    remaining: f64,
    /// The unit the rate is shown in, once there is one.
    unit: Option<RateUnit>,
}

impl Rate {
    /// How long the rate looks back.
    const WINDOW: Duration = Duration::from_secs(60);

    /// Adds the poll made at `at`. A run that went back (a reset) starts the
    /// estimate afresh.
    pub fn add(&mut self, at: Instant, status: &RunStatus) {
        let done = tasks_done(status);
        if self.samples.back().is_some_and(|&(_, last)| done < last) {
            self.samples.clear();
        }
        self.samples.push_back((at, done));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(t, _)| at.duration_since(t) > Self::WINDOW)
        {
            self.samples.pop_front();
        }
        self.remaining = (status.num_tasks as f64 - done).max(0.0);
        if let Some(rate) = self.per_second() {
            self.unit = Some(match self.unit {
                Some(unit) => unit.keep_or_change(rate),
                None => RateUnit::for_rate(rate),
            });
        }
    }

    /// The rate as text, in the unit kept so far: `30.0 tasks/min`, `rate ?`.
    pub fn text(&self) -> String {
        match (self.per_second(), self.unit) {
            (Some(rate), Some(unit)) => format::rate_in(rate, unit),
            (Some(rate), None) => format::rate(rate),
            (None, _) => "rate ?".to_owned(),
        }
    }

    /// Tasks per second, when the run moved between the first and last poll.
    pub fn per_second(&self) -> Option<f64> {
        let (&(t0, d0), &(t1, d1)) = (self.samples.front()?, self.samples.back()?);
        let seconds = t1.duration_since(t0).as_secs_f64();
        let rate = (d1 - d0) / seconds;
        (seconds > 0.0 && rate > 0.0 && rate.is_finite()).then_some(rate)
    }

    /// The time left at the current rate.
    pub fn eta(&self) -> Option<Duration> {
        let seconds = self.remaining / self.per_second()?;
        (seconds < 1.0e9).then(|| Duration::from_secs_f64(seconds))
    }
}

/// The progress as text: percentage, counts, rate and ETA.
pub fn progress_text(status: &RunStatus, rate: &Rate, complete: bool) -> String {
    format!(
        "{}  {}",
        format::percent(status.percent_done),
        counts_text(status, rate, complete)
    )
}

/// The counts, rate and ETA (the bar shows the percentage).
pub fn counts_text(status: &RunStatus, rate: &Rate, complete: bool) -> String {
    let pace = rate.text();
    let eta = if complete {
        "complete".to_owned()
    } else {
        rate.eta().map_or("ETA ?".to_owned(), |d| {
            format!("ETA {}", format::duration(d))
        })
    };
    format!(
        "not started {}  waiting {}  computing {}  done {}/{}  {pace}  {eta}",
        status.num_not_started(),
        status.num_waiting,
        status.num_computing,
        status.num_done,
        status.num_tasks
    )
}

/// Where the progress goes.
enum Display {
    /// An indicatif bar on the terminal.
    Bar(ProgressBar),
    /// One line per poll.
    Lines,
    /// One JSON object per poll.
    Json,
}

impl Display {
    fn new(json: bool) -> Display {
        if json {
            return Display::Json;
        }
        if !std::io::stdout().is_terminal() {
            return Display::Lines;
        }
        // Positions are hundredths of a percent. Only parts of a fixed
        // width beside the bar (the percentage padded to 7), the rest below.
        let bar = ProgressBar::with_draw_target(Some(10_000), ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template(
            "{spinner:.green} {elapsed_precise} [{wide_bar:.cyan/blue}] {prefix:>7}\n  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Display::Bar(bar)
    }

    fn show(
        &mut self,
        info: &Value,
        status: &RunStatus,
        rate: &Rate,
        complete: bool,
    ) -> Result<(), Failure> {
        match self {
            Display::Json => output::json(&with_not_started(info.clone(), status)),
            Display::Lines => output::line(&format!(
                "{}  {}",
                format::local_time(std::time::SystemTime::now()),
                progress_text(status, rate, complete)
            )),
            Display::Bar(bar) => {
                bar.set_position((status.percent_done.clamp(0.0, 100.0) * 100.0).round() as u64);
                bar.set_prefix(format::percent(status.percent_done));
                bar.set_message(counts_text(status, rate, complete));
                Ok(())
            }
        }
    }

    /// A line on stderr, above the bar when there is one.
    fn note(&self, line: &str) {
        match self {
            Display::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            Display::Lines | Display::Json => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Display::Bar(bar) = self {
            bar.finish();
        }
    }

    /// Leaves the bar as it is and moves to a fresh line. (Redrawing it
    /// would repeat it: the terminal's `^C` echo has already wrapped the
    /// full-width line.)
    fn interrupt(&self) {
        if let Display::Bar(bar) = self {
            bar.disable_steady_tick();
            let _ = output::print("\r\n");
        }
    }

    fn abandon(&self) {
        if let Display::Bar(bar) = self {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(waiting: i64, computing: i64, done: i64, percent: f64) -> RunStatus {
        RunStatus {
            num_tasks: 10,
            num_waiting: waiting,
            num_computing: computing,
            num_done: done,
            percent_done: percent,
        }
    }

    #[test]
    fn a_run_is_complete_at_100_percent_or_all_done() {
        assert!(!is_complete(&status(0, 1, 9, 99.0)));
        assert!(is_complete(&status(0, 1, 9, 100.0)));
        assert!(is_complete(&status(0, 0, 10, 99.0)));
    }

    #[test]
    fn rate_and_eta_follow_the_polls() {
        let t0 = Instant::now();
        let mut rate = Rate::default();
        rate.add(t0, &status(10, 0, 0, 0.0));
        assert_eq!(rate.per_second(), None);
        rate.add(t0 + Duration::from_secs(2), &status(8, 0, 2, 20.0));
        assert!((rate.per_second().unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(rate.eta().unwrap().as_secs(), 8);
        // A reset starts afresh.
        rate.add(t0 + Duration::from_secs(3), &status(10, 0, 0, 0.0));
        assert_eq!(rate.per_second(), None);
        let text = progress_text(&status(10, 0, 0, 0.0), &rate, false);
        assert_eq!(
            text,
            "0.0 %  not started 0  waiting 10  computing 0  done 0/10  rate ?  ETA ?"
        );
    }
}
