//! Who a worker is: a UUID1 as 32 lowercase hex digits (as the Python client),
//! the host name and the process id.

/// A fresh worker UUID: time-based (v1) with a random node id, so that two
/// processes on one host never collide.
pub(crate) fn new_worker_uuid() -> String {
    let random = uuid::Uuid::new_v4();
    let mut node = [0u8; 6];
    node.copy_from_slice(&random.as_bytes()[..6]);
    node[0] |= 0x01; // multicast bit: marks a random node id (RFC 4122, 4.5)
    uuid::Uuid::now_v1(&node).simple().to_string()
}

/// The machine's host name, or `"unknown"` when it cannot be read.
pub fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return "unknown".to_owned();
    }
    // POSIX may truncate without a NUL: read up to the first NUL or the end.
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..end]).into_owned();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_uuids_are_32_hex_digits_and_unique() {
        let a = new_worker_uuid();
        let b = new_worker_uuid();
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn host_name_is_read() {
        assert!(!host_name().is_empty());
    }
}
