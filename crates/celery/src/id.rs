//! Task ids: UUID v4 strings, as Celery's `uuid()` makes them.
//!
//! 122 random bits per id would need an entropy read per task; instead each
//! process reads 16 bytes of `/dev/urandom` once and runs a counter through
//! splitmix64, a bijection, so ids are distinct within the process and
//! unpredictable across processes.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn keys() -> (u64, u64) {
    static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    *KEYS.get_or_init(|| {
        let mut b = [0u8; 16];
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .is_err()
        {
            // No urandom: time and pid still separate processes.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            b[..8].copy_from_slice(&t.to_le_bytes());
            b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        (
            u64::from_le_bytes(b[..8].try_into().unwrap()),
            u64::from_le_bytes(b[8..].try_into().unwrap()),
        )
    })
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A new UUID v4 string like `"1b4e28ba-2fa1-4d2e-883f-0016d3cca427"`.
pub fn new_task_id() -> String {
    // Relaxed: the counter only has to hand out distinct numbers.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let (k1, k2) = keys();
    let hi = splitmix(k1 ^ n);
    let lo = splitmix(k2 ^ n.rotate_left(32));
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// A prefix for [`new_task_id_under`]: the first 8 hex digits of a new id.
pub fn new_prefix() -> String {
    new_task_id()[..8].to_string()
}

/// A new UUID v4 string whose first 8 hex digits are `prefix` (8 lowercase
/// hex digits, from [`new_prefix`]): an executor names its tasks under a
/// prefix of its own, so that one pattern subscription hears all their
/// results. Still a UUID v4 (its version and variant bits are past the
/// prefix), with 90 bits that differ from task to task.
pub fn new_task_id_under(prefix: &str) -> String {
    let id = new_task_id();
    match prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => format!("{}{}", prefix.to_ascii_lowercase(), &id[8..]),
        false => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_under_a_prefix_are_distinct_uuid4_strings_with_it() {
        let prefix = new_prefix();
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_task_id_under(&prefix)).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert!(id.starts_with(&prefix) && &id[8..9] == "-", "{id}");
            assert_eq!((id.len(), &id[14..15]), (36, "4"), "{id}");
        }
        assert_ne!(new_task_id_under("not hex!")[..8], *"not hex!");
    }

    #[test]
    fn ids_are_distinct_uuid4_strings() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_task_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = new_task_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
    }
}
