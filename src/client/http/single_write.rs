//! One write per request: the request head and a small body leave in a single
//! `send`, as they do from the Python client.
//!
//! ureq hands its transport the head of a request and then its body as two
//! separate writes, so a PUT or POST cost two system calls and two TCP
//! segments, and woke the server twice (BENCHMARKS.md, "Where the time goes").
//! [`SingleWriteConnector`] sits on top of ureq's own connectors (TCP, TLS) and
//! holds what is written until ureq waits for the answer, or until
//! [`HOLD_LIMIT`] bytes are waiting; then it sends all of it at once.
//!
//! Every byte of a request passes here (the connectors below it only open
//! the connection: TCP, the proxy's `CONNECT`, the TLS handshake), so this is
//! also where a [`SendWatch`] learns whether an attempt sent any of its
//! request: a POST whose attempt failed before that may be repeated.
//!
//! Two more system calls per exchange are saved here (`taskfarm run`'s
//! profile, BENCHMARKS.md section g):
//! - the time left until an attempt's deadline is passed down rounded up to
//!   the millisecond (`whole_ms`): ureq's TCP transport sets `SO_SNDTIMEO` /
//!   `SO_RCVTIMEO` whenever the value it is given changes, which a deadline
//!   read to the nanosecond does at every request; the kernel keeps these
//!   timeouts in clock ticks (1 to 10 ms) rounded up anyway, so the deadline
//!   is the same.
//! - ureq probes a connection (`is_open`: non-blocking mode on, a one-byte
//!   read, off) when it goes back to the pool after an answer and again when
//!   it is taken out for the next request. The first probe is skipped: the
//!   second one, which ureq always makes before a pooled connection is used,
//!   sees the same things (bytes after the answer, a close) and later.

use std::cell::Cell;

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

thread_local! {
    /// Whether a byte of a request was handed to a connection on this thread
    /// since the last [`SendWatch::start`]. ureq's blocking calls do all
    /// their I/O on the thread that makes the call.
    static REQUEST_SENT: Cell<bool> = const { Cell::new(false) };
}

/// Tells whether the request of one attempt, made on this thread, sent any
/// byte. Start it right before the attempt, read it right after.
#[derive(Debug)]
pub struct SendWatch(());

impl SendWatch {
    /// Starts watching: nothing sent so far.
    pub fn start() -> SendWatch {
        REQUEST_SENT.with(|sent| sent.set(false));
        SendWatch(())
    }

    /// Whether a byte of the request was given to the connection since
    /// [`SendWatch::start`] (counted when a send is tried, so a send that
    /// failed half-way counts too).
    pub fn request_sent(&self) -> bool {
        REQUEST_SENT.with(Cell::get)
    }
}

/// Notes that a byte of a request is about to be sent.
fn note_sending() {
    REQUEST_SENT.with(|sent| sent.set(true));
}

/// Above this many bytes waiting, they are sent without waiting for the end of
/// the request: a large body is streamed, not held in memory.
pub const HOLD_LIMIT: usize = 16 * 1024;

/// Wraps each connection ureq opens in a [`SingleWriteTransport`].
#[derive(Debug, Default)]
pub struct SingleWriteConnector;

impl<In: Transport> Connector<In> for SingleWriteConnector {
    type Out = SingleWriteTransport<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| SingleWriteTransport {
            inner,
            held: Vec::new(),
            answered: false,
        }))
    }
}

/// A connection whose writes are held until the answer is awaited.
#[derive(Debug)]
pub struct SingleWriteTransport<T> {
    inner: T,
    /// Written by ureq, not sent yet.
    held: Vec<u8>,
    /// Input was awaited since the last `is_open`: the next one is ureq's
    /// probe of a connection going back to the pool, and is skipped.
    answered: bool,
}

/// `timeout` with the time left rounded up to the whole millisecond.
fn whole_ms(mut timeout: NextTimeout) -> NextTimeout {
    if !timeout.after.is_not_happening() {
        let left = *timeout.after;
        let ms = left.as_nanos().div_ceil(1_000_000);
        let rounded = std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
        timeout.after = rounded.max(left).into();
    }
    timeout
}

impl<T: Transport> SingleWriteTransport<T> {
    /// Sends what is held, through the inner transport's output buffer, and
    /// forgets it whether or not that worked (keeping the allocation).
    fn send_held(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = whole_ms(timeout);
        let mut result = Ok(());
        let mut sent = 0;
        if !self.held.is_empty() {
            note_sending();
        }
        while sent < self.held.len() && result.is_ok() {
            let output = self.inner.buffers().output();
            let amount = output.len().min(self.held.len() - sent);
            output[..amount].copy_from_slice(&self.held[sent..sent + amount]);
            result = self.inner.transmit_output(amount, timeout);
            sent += amount;
        }
        self.held.clear();
        result
    }
}

impl<T: Transport> Transport for SingleWriteTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.held.is_empty() && amount >= HOLD_LIMIT {
            note_sending();
            return self.inner.transmit_output(amount, whole_ms(timeout));
        }
        let written = &self.inner.buffers().output()[..amount];
        self.held.extend_from_slice(written);
        if self.held.len() >= HOLD_LIMIT {
            self.send_held(timeout)?;
        }
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.send_held(timeout)?;
        self.answered = true;
        self.inner.maybe_await_input(whole_ms(timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.send_held(timeout)?;
        self.answered = true;
        self.inner.await_input(whole_ms(timeout))
    }

    fn is_open(&mut self) -> bool {
        if std::mem::take(&mut self.answered) {
            // Going back to the pool: probed when taken out again.
            return self.held.is_empty();
        }
        self.held.is_empty() && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::LazyBuffers;

    /// An inner transport that records what it is asked to send.
    #[derive(Debug)]
    struct Recorder {
        buffers: LazyBuffers,
        sends: Vec<Vec<u8>>,
        fail_sends: bool,
        probes: usize,
        timeouts: Vec<std::time::Duration>,
    }

    impl Recorder {
        fn new(output_size: usize) -> Recorder {
            Recorder {
                buffers: LazyBuffers::new(1024, output_size),
                sends: Vec::new(),
                fail_sends: false,
                probes: 0,
                timeouts: Vec::new(),
            }
        }
    }

    impl Transport for Recorder {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, amount: usize, t: NextTimeout) -> Result<(), ureq::Error> {
            self.timeouts.push(*t.after);
            if self.fail_sends {
                return Err(ureq::Error::Io(std::io::ErrorKind::BrokenPipe.into()));
            }
            let sent = self.buffers.output()[..amount].to_vec();
            self.sends.push(sent);
            Ok(())
        }
        fn await_input(&mut self, t: NextTimeout) -> Result<bool, ureq::Error> {
            self.timeouts.push(*t.after);
            Ok(true)
        }
        fn is_open(&mut self) -> bool {
            self.probes += 1;
            true
        }
    }

    /// Writes `bytes` the way ureq does: into the output buffer, then transmit.
    fn write(t: &mut SingleWriteTransport<Recorder>, bytes: &[u8]) -> Result<(), ureq::Error> {
        t.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        t.transmit_output(bytes.len(), NextTimeout::default())
    }

    fn wrap(inner: Recorder) -> SingleWriteTransport<Recorder> {
        SingleWriteTransport {
            inner,
            held: Vec::new(),
            answered: false,
        }
    }

    #[test]
    fn head_and_body_leave_in_one_send_when_the_answer_is_awaited() {
        let mut t = wrap(Recorder::new(64 * 1024));
        write(&mut t, b"PUT /api/runs/x/tasks/1 HTTP/1.1\r\n\r\n").unwrap();
        write(&mut t, b"{\"percentCompleted\":10.0}").unwrap();
        assert!(t.inner.sends.is_empty());
        assert!(
            !t.is_open(),
            "a half-sent request must not go back to the pool"
        );
        t.await_input(NextTimeout::default()).unwrap();
        assert_eq!(
            t.inner.sends,
            vec![b"PUT /api/runs/x/tasks/1 HTTP/1.1\r\n\r\n{\"percentCompleted\":10.0}".to_vec()]
        );
        assert!(t.is_open());
        t.maybe_await_input(NextTimeout::default()).unwrap();
        assert_eq!(t.inner.sends.len(), 1, "nothing held, nothing more sent");
    }

    #[test]
    fn large_writes_are_not_held() {
        let mut t = wrap(Recorder::new(64 * 1024));
        let big = vec![b'x'; HOLD_LIMIT];
        write(&mut t, &big).unwrap();
        assert_eq!(t.inner.sends, vec![big.clone()]);

        write(&mut t, b"head").unwrap();
        write(&mut t, &big).unwrap();
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(
            t.inner.sends[1..],
            [expected],
            "order kept, sent at the limit"
        );
        assert!(t.held.is_empty());
    }

    #[test]
    fn held_bytes_larger_than_the_inner_buffer_go_in_pieces_in_order() {
        let mut t = wrap(Recorder::new(10));
        for piece in [b"0123456".as_slice(), b"789abcd", b"efghij"] {
            write(&mut t, piece).unwrap();
        }
        t.await_input(NextTimeout::default()).unwrap();
        assert_eq!(t.inner.sends.concat(), b"0123456789abcdefghij");
        assert!(t.inner.sends.iter().all(|s| s.len() <= 10));
    }

    #[test]
    fn a_failed_send_is_reported_and_drops_what_was_held() {
        let mut t = wrap(Recorder::new(1024));
        write(&mut t, b"POST /api/worker HTTP/1.1\r\n\r\n").unwrap();
        t.inner.fail_sends = true;
        assert!(t.await_input(NextTimeout::default()).is_err());
        assert!(t.held.is_empty());
    }

    #[test]
    fn a_send_watch_sees_whether_the_attempt_sent_a_byte() {
        let watch = SendWatch::start();
        assert!(!watch.request_sent(), "no connection yet");
        let mut t = wrap(Recorder::new(64 * 1024));
        write(&mut t, b"POST /api/worker HTTP/1.1\r\n\r\n").unwrap();
        assert!(!watch.request_sent(), "held, not sent");
        t.await_input(NextTimeout::default()).unwrap();
        assert!(watch.request_sent());

        // The next attempt on a kept-alive connection starts from nothing.
        let watch = SendWatch::start();
        assert!(!watch.request_sent());
        t.maybe_await_input(NextTimeout::default()).unwrap();
        assert!(!watch.request_sent(), "nothing held, nothing sent");

        // A send that fails may have put bytes on the wire: it counts.
        write(&mut t, b"POST /api/worker HTTP/1.1\r\n\r\n").unwrap();
        t.inner.fail_sends = true;
        assert!(t.await_input(NextTimeout::default()).is_err());
        assert!(watch.request_sent());

        // A large write goes straight through, and counts.
        let watch = SendWatch::start();
        t.inner.fail_sends = false;
        write(&mut t, &vec![b'x'; HOLD_LIMIT]).unwrap();
        assert!(watch.request_sent());

        // Another thread's sends are not this thread's attempt.
        let watch = SendWatch::start();
        std::thread::spawn(|| {
            let mut t = wrap(Recorder::new(1024));
            write(&mut t, b"GET / HTTP/1.1\r\n\r\n").unwrap();
            t.await_input(NextTimeout::default()).unwrap();
        })
        .join()
        .unwrap();
        assert!(!watch.request_sent());
    }

    #[test]
    fn the_time_left_goes_down_rounded_up_to_the_millisecond() {
        let mut t = wrap(Recorder::new(1024));
        let left = |d: std::time::Duration| NextTimeout {
            after: d.into(),
            ..NextTimeout::default()
        };
        let ms = std::time::Duration::from_millis;
        write(&mut t, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        t.await_input(left(ms(30_000) - std::time::Duration::from_nanos(1)))
            .unwrap();
        t.await_input(left(ms(30_000) - std::time::Duration::from_micros(999)))
            .unwrap();
        t.await_input(left(ms(0))).unwrap();
        // The send (held until the first read) and the three reads.
        assert_eq!(
            t.inner.timeouts,
            [ms(30_000), ms(30_000), ms(30_000), ms(0)]
        );
    }

    #[test]
    fn the_probe_after_an_answer_is_skipped_the_one_before_a_request_is_not() {
        let mut t = wrap(Recorder::new(1024));
        write(&mut t, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        t.await_input(NextTimeout::default()).unwrap();
        assert!(t.is_open(), "back to the pool");
        assert_eq!(t.inner.probes, 0);
        assert!(t.is_open(), "taken out of the pool");
        assert_eq!(t.inner.probes, 1);
        assert!(t.is_open());
        assert_eq!(t.inner.probes, 2);
    }
}
