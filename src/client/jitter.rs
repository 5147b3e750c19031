//! Random waits, so that processes that started or failed together do not
//! act together again: a small generator ([`Rng`], SplitMix64) seeded from the
//! operating system, full jitter over a backoff step ([`full_jitter`], the
//! retry waits of `http/retry.rs`), and a random share of an interval
//! ([`share_of`]: the journal's first heartbeat, a start spread without a
//! rank). Nothing here needs to be unpredictable to an attacker; it needs to
//! differ from process to process, also after `fork()`.

use std::cell::Cell;
use std::time::Duration;

/// A SplitMix64 generator: 64 bits of state, good enough to spread waits,
/// and reproducible from a seed in tests.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that starts from `seed` (the same seed, the same numbers).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1), with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

thread_local! {
    /// This thread's generator and the process it was seeded in: a child
    /// after `fork()` copies the parent's state, and reseeds.
    static THREAD_RNG: Cell<Option<(u32, u64)>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's generator, seeded from the operating system
/// (a random UUID's bits) on first use in each thread and process.
pub fn with_thread_rng<T>(f: impl FnOnce(&mut Rng) -> T) -> T {
    THREAD_RNG.with(|cell| {
        let pid = std::process::id();
        let state = match cell.get() {
            Some((seeded_in, state)) if seeded_in == pid => state,
            _ => {
                let bits = uuid::Uuid::new_v4().as_u128();
                (bits as u64) ^ ((bits >> 64) as u64) ^ u64::from(pid)
            }
        };
        let mut rng = Rng::seeded(state);
        let out = f(&mut rng);
        cell.set(Some((pid, rng.0)));
        out
    })
}

/// The wait before a retry whose backoff step is `step`, at most `cap`:
/// full jitter, uniform between 0 and twice the step, so that its mean is
/// the step itself and a series of retries waits as long on average as
/// without jitter. A step above half the cap is spread over
/// [2·step − cap, cap] instead: the same mean, never more than the cap.
pub fn full_jitter(step: Duration, cap: Duration, rng: &mut Rng) -> Duration {
    let step = step.min(cap).as_secs_f64();
    let cap = cap.as_secs_f64();
    let (low, high) = if 2.0 * step <= cap {
        (0.0, 2.0 * step)
    } else {
        (2.0 * step - cap, cap)
    };
    Duration::from_secs_f64(low + (high - low) * rng.unit())
}

/// A random share of `interval`, in (0, interval]: never 0, so that a wait
/// of it always lets time pass, and never more than the interval.
pub fn share_of(interval: Duration, rng: &mut Rng) -> Duration {
    interval.mul_f64(1.0 - rng.unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_bounds(samples: &[f64]) -> (f64, f64, f64) {
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(0.0, f64::max);
        (mean, min, max)
    }

    #[test]
    fn full_jitter_spans_zero_to_twice_the_step_with_the_step_as_mean() {
        let cap = Duration::from_secs(120);
        let mut rng = Rng::seeded(20240611);
        for step_ms in [300u64, 600, 2400, 38_400, 60_000] {
            let step = Duration::from_millis(step_ms);
            let waits: Vec<f64> = (0..20_000)
                .map(|_| full_jitter(step, cap, &mut rng).as_secs_f64())
                .collect();
            let s = step.as_secs_f64();
            let (mean, min, max) = mean_and_bounds(&waits);
            assert!(min >= 0.0 && max <= 2.0 * s, "{step_ms}: {min}..{max}");
            // Uniform over [0, 2s]: the extremes are reached within 1 %.
            assert!(min < 0.02 * s && max > 1.98 * s, "{step_ms}: {min}..{max}");
            // The standard error of the mean is 2s/sqrt(12·20000) ≈ 0.004 s.
            assert!((mean - s).abs() < 0.02 * s, "{step_ms}: mean {mean}");
        }
    }

    #[test]
    fn a_step_above_half_the_cap_keeps_its_mean_and_never_passes_the_cap() {
        let cap = Duration::from_secs(120);
        let mut rng = Rng::seeded(7);
        for (step, low) in [(76.8, 33.6), (120.0, 120.0), (1000.0, 120.0)] {
            let waits: Vec<f64> = (0..20_000)
                .map(|_| full_jitter(Duration::from_secs_f64(step), cap, &mut rng).as_secs_f64())
                .collect();
            let (mean, min, max) = mean_and_bounds(&waits);
            assert!(min >= low - 1e-9 && max <= 120.0, "{step}: {min}..{max}");
            let want = f64::min(step, 120.0);
            assert!((mean - want).abs() < 0.01 * want, "{step}: mean {mean}");
        }
        assert_eq!(full_jitter(Duration::ZERO, cap, &mut rng), Duration::ZERO);
    }

    #[test]
    fn a_share_of_an_interval_is_never_zero_nor_more_than_the_interval() {
        let mut rng = Rng::seeded(1);
        let interval = Duration::from_secs(30);
        let shares: Vec<f64> = (0..10_000)
            .map(|_| share_of(interval, &mut rng).as_secs_f64())
            .collect();
        let (mean, min, max) = mean_and_bounds(&shares);
        assert!(min > 0.0 && max <= 30.0, "{min}..{max}");
        assert!((mean - 15.0).abs() < 0.5, "mean {mean}");
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers_and_threads_differ() {
        let a: Vec<u64> = (0..4)
            .scan(Rng::seeded(5), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(Rng::seeded(5), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        let here = with_thread_rng(|r| r.next_u64());
        let there = std::thread::spawn(|| with_thread_rng(|r| r.next_u64()))
            .join()
            .unwrap();
        assert_ne!(here, there);
    }
}
