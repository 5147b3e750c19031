//! Name resolution for the agent: an IP address in the URL is used as it is,
//! a host name is looked up once and the answer reused for a minute.
//!
//! - [`CachingResolver`]: the agent's resolver, one remembered answer;
//! - [`LookupFailed`]: why a name has no address, as `getaddrinfo` says it
//!   (a name that does not exist, or a resolver that failed for now), which
//!   `retry.rs` reads to decide whether asking again can help.
//!
//! ureq's own resolver looks the host up again for every request, even on a
//! kept-alive connection, and when a timeout is set (we always set one) it
//! does so on a freshly spawned thread. On the canned benchmark server that
//! was about a third of the client's CPU per request and ten of its 22
//! system calls (BENCHMARKS.md, "Where the time goes"). It also turns every
//! failed lookup into one error, whether the name does not exist or the DNS
//! server did not answer: the lookup here is `getaddrinfo` itself, so that
//! its code is kept.

use std::ffi::{CStr, CString};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::endpoint::Endpoint;

/// How long the addresses of a host name are reused before it is looked up
/// again (a server moved by DNS is found within this time).
pub const NAME_CACHE_TTL: Duration = Duration::from_secs(60);

/// The resolver of one handle's agent. A handle talks to one server, so one
/// remembered answer is enough.
#[derive(Debug, Default)]
pub struct CachingResolver {
    lookup: DefaultResolver,
    remembered: Mutex<Option<Remembered>>,
}

#[derive(Debug)]
struct Remembered {
    host: String,
    port: u16,
    addresses: ResolvedSocketAddrs,
    looked_up_at: Instant,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // A proxy's URI may hold its user name and password
        // (`user:password@proxy:3128`): they say who connects, not where.
        let without_credentials;
        let uri = match uri.authority().map(|a| a.as_str()) {
            Some(authority) if authority.contains('@') => {
                let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
                without_credentials = Uri::builder()
                    .scheme(uri.scheme_str().unwrap_or("http"))
                    .authority(host_port)
                    .path_and_query("/")
                    .build()
                    .map_err(|_| ureq::Error::BadUri("the host or port is not valid".to_owned()))?;
                &without_credentials
            }
            _ => uri,
        };
        let Some(Endpoint { host, port, .. }) = Endpoint::of(uri) else {
            if matches!(uri.scheme_str(), Some("http" | "https")) {
                // Never ureq's fallback to the scheme's port for a port
                // that is written but not a number in 1..65535.
                return Err(ureq::Error::BadUri(
                    "the host or port is not valid".to_owned(),
                ));
            }
            // Other schemes (a SOCKS proxy): ureq's resolver.
            return self.lookup.resolve(uri, config, timeout);
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut addresses = self.empty();
            addresses.push(SocketAddr::new(ip, port));
            return Ok(addresses);
        }
        if let Some(addresses) = self.remembered(host, port) {
            return Ok(addresses);
        }
        let addresses = self.look_up(host, port, timeout)?;
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        *remembered = Some(Remembered {
            host: host.to_owned(),
            port,
            addresses: addresses.clone(),
            looked_up_at: Instant::now(),
        });
        Ok(addresses)
    }
}

impl CachingResolver {
    /// The addresses of `host` with `port`, from `getaddrinfo`, within the
    /// timeout when there is one (the lookup then runs on a thread of its
    /// own, which is left to finish alone when the time is up).
    fn look_up(
        &self,
        host: &str,
        port: u16,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let name = CString::new(host)
            .map_err(|_| ureq::Error::BadUri("the host holds a NUL byte".to_owned()))?;
        let found = if timeout.after.is_not_happening() {
            getaddrinfo(&name)
        } else {
            let (tx, rx) = mpsc::sync_channel(1);
            std::thread::spawn(move || tx.send(getaddrinfo(&name)).ok());
            rx.recv_timeout(*timeout.after)
                .map_err(|_| ureq::Error::Timeout(timeout.reason))?
        };
        let found = found.map_err(|code| {
            ureq::Error::Io(std::io::Error::other(LookupFailed::new(host, code)))
        })?;
        let mut addresses = self.empty();
        for mut address in found {
            address.set_port(port);
            if !addresses.contains(&address) && addresses.try_push(address).is_err() {
                break;
            }
        }
        if addresses.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addresses)
    }

    /// The remembered addresses of `host:port` while they are fresh.
    fn remembered(&self, host: &str, port: u16) -> Option<ResolvedSocketAddrs> {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        remembered
            .as_ref()
            .filter(|r| r.host == host && r.port == port)
            .filter(|r| r.looked_up_at.elapsed() < NAME_CACHE_TTL)
            .map(|r| r.addresses.clone())
    }
}

/// Why a host name has no address: `getaddrinfo`'s code and its text. It
/// travels to the retry rules inside the `ureq::Error::Io` of the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailed {
    /// The name looked up.
    pub host: String,
    /// `getaddrinfo`'s code (`EAI_NONAME`, `EAI_AGAIN`, ...).
    pub code: i32,
    /// What the code means (`gai_strerror`, or the system error of `EAI_SYSTEM`).
    pub reason: String,
}

impl LookupFailed {
    /// The failure of looking up `host` with `getaddrinfo` code `code`.
    pub fn new(host: &str, code: i32) -> LookupFailed {
        let reason = if code == libc::EAI_SYSTEM {
            std::io::Error::last_os_error().to_string()
        } else {
            // SAFETY: gai_strerror returns a static string for every code.
            unsafe { CStr::from_ptr(libc::gai_strerror(code)) }
                .to_string_lossy()
                .into_owned()
        };
        LookupFailed {
            host: host.to_owned(),
            code,
            reason,
        }
    }

    /// Whether the name does not exist: the DNS said so (`EAI_NONAME`: no
    /// such name, NXDOMAIN; `EAI_NODATA`: the name has no address). Asking
    /// again will not change that, unlike a resolver that could not answer
    /// now (`EAI_AGAIN`) or failed (`EAI_FAIL`, `EAI_SYSTEM`, ...).
    pub fn no_such_name(&self) -> bool {
        self.code == libc::EAI_NONAME || self.code == EAI_NODATA
    }
}

/// glibc's "no address associated with hostname" (not in every libc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const EAI_NODATA: i32 = libc::EAI_NODATA;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const EAI_NODATA: i32 = libc::EAI_NONAME;

impl fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "looking up {} failed: {}", self.host, self.reason)
    }
}

impl std::error::Error for LookupFailed {}

/// The addresses `getaddrinfo` gives for `name` (TCP, IPv4 and IPv6; port 0),
/// in its order, or its error code.
fn getaddrinfo(name: &CStr) -> Result<Vec<SocketAddr>, i32> {
    // SAFETY: an all-zero addrinfo is the documented "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: name is a C string, hints lives across the call, list is
    // written by getaddrinfo and freed below with freeaddrinfo.
    let code = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if code != 0 {
        return Err(code);
    }
    let mut ips = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: entry is an element of the list getaddrinfo returned, and
        // ai_addr points to a sockaddr of the family ai_family says.
        unsafe {
            let ai = &*entry;
            match ai.ai_family {
                libc::AF_INET if !ai.ai_addr.is_null() => {
                    let sa = &*(ai.ai_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
                    ips.push(SocketAddr::V4(SocketAddrV4::new(ip, 0)));
                }
                libc::AF_INET6 if !ai.ai_addr.is_null() => {
                    let sa = &*(ai.ai_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
                    ips.push(SocketAddr::V6(SocketAddrV6::new(
                        ip,
                        0,
                        sa.sin6_flowinfo,
                        sa.sin6_scope_id,
                    )));
                }
                _ => {}
            }
            entry = ai.ai_next;
        }
    }
    // SAFETY: list came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(resolver: &CachingResolver, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let config = Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        resolver
            .resolve(&uri, &config, timeout)
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn ip_addresses_are_used_as_written_with_the_scheme_port() {
        let resolver = CachingResolver::default();
        assert_eq!(
            resolve(&resolver, "http://127.0.0.1:5000/api/token"),
            vec!["127.0.0.1:5000".parse().unwrap()]
        );
        assert_eq!(
            resolve(&resolver, "http://10.1.2.3/api/token"),
            vec!["10.1.2.3:80".parse().unwrap()]
        );
        assert_eq!(
            resolve(&resolver, "https://[::1]/api/token"),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert!(resolver.remembered.lock().unwrap().is_none());
    }

    #[test]
    fn a_proxys_user_name_and_password_are_not_part_of_where_to_connect() {
        let resolver = CachingResolver::default();
        assert_eq!(
            resolve(&resolver, "http://squid:pw@127.0.0.1:3128"),
            vec!["127.0.0.1:3128".parse().unwrap()]
        );
    }

    #[test]
    fn a_host_name_is_looked_up_once_and_remembered() {
        let resolver = CachingResolver::default();
        let first = resolve(&resolver, "http://localhost:5000/api/runs");
        assert!(!first.is_empty());
        assert!(first
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 5000));
        assert_eq!(
            resolver.remembered("localhost", 5000).unwrap().len(),
            first.len()
        );
        assert!(resolver.remembered("localhost", 5001).is_none());
        assert_eq!(resolve(&resolver, "http://localhost:5000/api/run/x"), first);
    }

    #[test]
    fn a_stale_answer_is_not_reused() {
        let resolver = CachingResolver::default();
        resolve(&resolver, "http://localhost:5000/");
        let long_ago = Instant::now()
            .checked_sub(NAME_CACHE_TTL + Duration::from_secs(1))
            .expect("the monotonic clock is older than a minute");
        resolver
            .remembered
            .lock()
            .unwrap()
            .as_mut()
            .unwrap()
            .looked_up_at = long_ago;
        assert!(resolver.remembered("localhost", 5000).is_none());
    }
}
