//! A worker in Rust: works through a run until no task is left.
//!
//! ```text
//! export TASKFARM_URL=http://localhost:5000/api/ TASKFARM_USER=alice TASKFARM_PASSWORD=...
//! cargo run --example worker -- RUN_UUID [STEP_MS]
//! ```
//!
//! Each task is computed in ten steps of STEP_MS milliseconds (default 10),
//! with a progress update after each; `worker NAME: task K done` is printed
//! for each task done, then `worker NAME: N tasks done`. A stop signal
//! (`TASKFARM_STOP_SIGNALS`, with the C ABI) or the deadline
//! (`TASKFARM_DEADLINE`) ends the loop with the task handed back.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use taskfarm_worker::{ErrorKind, Run, Settings, Worker};

const STEPS: u32 = 10;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(run_uuid), step) = (args.next(), args.next()) else {
        eprintln!("usage: worker RUN_UUID [STEP_MS]");
        return ExitCode::from(2);
    };
    let step = match step.map(|s| s.parse::<u64>()).transpose() {
        Ok(ms) => Duration::from_millis(ms.unwrap_or(10)),
        Err(_) => {
            eprintln!("worker: STEP_MS must be a whole number of milliseconds");
            return ExitCode::from(2);
        }
    };
    match work(&run_uuid, step) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message never holds the password or the token.
            eprintln!("worker: {e} ({:?})", e.kind());
            ExitCode::FAILURE
        }
    }
}

fn work(run_uuid: &str, step: Duration) -> taskfarm_worker::Result<()> {
    let settings = Settings::from_env()?;
    let run = Arc::new(Run::open(&settings, run_uuid)?);
    let mut worker = Worker::register(run)?;
    // A short name to tell workers apart: the end of the worker's UUID.
    let name = worker.uuid()[24..].to_owned();
    let mut done = 0;
    for task in worker.tasks() {
        let mut task = match task {
            Ok(task) => task,
            // A stop signal or the deadline: the task went back to the server.
            Err(e) if e.kind() == ErrorKind::Stopped => {
                eprintln!("worker {name}: {e}");
                break;
            }
            Err(e) => return Err(e),
        };
        // A task handed back by another worker carries on where it stopped.
        let first = (task.percent() / 100.0 * f64::from(STEPS)) as u32 + 1;
        for s in first..=STEPS {
            std::thread::sleep(step); // the computation of one step
            task.update(100.0 * f64::from(s) / f64::from(STEPS))?;
        }
        let id = task.id();
        task.done()?;
        done += 1;
        println!("worker {name}: task {id} done");
    }
    println!("worker {name}: {done} tasks done");
    Ok(())
}
