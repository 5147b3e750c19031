//! Name resolution for the agent: an IP address in the URL is used as it is,
//! a host name is looked up once and the answer reused for a minute.
//!
//! ureq's own resolver looks the host up again for every request, even on a
//! kept-alive connection, and when a timeout is set (we always set one) it
//! does so on a freshly spawned thread. On the canned benchmark server that
//! was about a third of the client's CPU per request and ten of its 22
//! system calls (BENCHMARKS.md, "Where the time goes").

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
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
        let addresses = self.lookup.resolve(uri, config, timeout)?;
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
