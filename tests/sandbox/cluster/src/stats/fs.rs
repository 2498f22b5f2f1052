//! The simulated file system of a volume: what a kubelet measures on it (bytes and inodes),
//! and how much a fill writes. Pure functions.

use crate::quantity;

/// What a freshly provisioned volume holds (file system metadata, a database's first files).
pub const INITIAL_USED_BYTES: u64 = 1 << 20;
/// One inode per this many bytes of capacity (mke2fs's default `inode_ratio`).
pub const BYTES_PER_INODE: u64 = 16 << 10;
/// Inodes a fresh ext4 file system uses (root, lost+found and the reserved ones).
pub const BASE_INODES_USED: u64 = 11;
/// One file per this many used bytes (databases write few, large files).
pub const BYTES_PER_FILE: u64 = 1 << 20;

/// A measurement of one file system, as kubelet's `FsStats` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub inodes: u64,
    pub inodes_free: u64,
    pub inodes_used: u64,
}

/// Measures a file system of `capacity` bytes holding `used` bytes: used never exceeds the
/// capacity, available is what is left, inodes grow with the capacity (as resize2fs adds
/// inode tables) and are used in proportion to the data.
pub fn measure(capacity: u64, used: u64) -> FsStats {
    let used = used.min(capacity);
    let inodes = (capacity / BYTES_PER_INODE).max(BASE_INODES_USED);
    let inodes_used = (BASE_INODES_USED + used.div_ceil(BYTES_PER_FILE)).min(inodes);
    FsStats {
        capacity_bytes: capacity,
        used_bytes: used,
        available_bytes: capacity - used,
        inodes,
        inodes_free: inodes - inodes_used,
        inodes_used,
    }
}

/// How full to make a volume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// This many bytes used in all.
    Bytes(u64),
    /// This share (0-100) of the current capacity used.
    Percent(f64),
}

impl Fill {
    /// The used bytes after the fill of a file system of `capacity` bytes: writing past the
    /// capacity stops at it (the disk is full).
    pub fn used_of(self, capacity: u64) -> u64 {
        let wanted = match self {
            Fill::Bytes(b) => b,
            Fill::Percent(p) => {
                let share = p.clamp(0.0, 100.0) / 100.0;
                // Rounded up: "90%" of an odd size is at least 90%.
                (capacity as f64 * share).ceil() as u64
            }
        };
        wanted.min(capacity)
    }
}

impl std::str::FromStr for Fill {
    type Err = String;

    /// `85%`, `85.5%`, or a quantity (`5Gi`, `1073741824`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(Fill::Percent(v)),
                _ => Err(format!("{text:?} is not a percentage between 0% and 100%")),
            };
        }
        match quantity::parse(text) {
            Some(b) if b >= 0 => Ok(Fill::Bytes(u64::try_from(b).unwrap_or(u64::MAX))),
            _ => Err(format!("{text:?} is neither a percentage nor a byte quantity")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;

    #[test]
    fn a_measurement_is_consistent() {
        let s = measure(GI, 300 << 20);
        assert_eq!(s.available_bytes, GI - (300 << 20));
        assert_eq!(s.inodes, 65536);
        assert_eq!(s.inodes_used, 11 + 300);
        assert_eq!(s.inodes_free + s.inodes_used, s.inodes);
    }

    #[test]
    fn a_full_disk_has_nothing_available() {
        let s = measure(GI, 2 * GI);
        assert_eq!((s.used_bytes, s.available_bytes), (GI, 0));
        assert_eq!(Fill::Bytes(5 * GI).used_of(GI), GI);
        assert_eq!(Fill::Percent(100.0).used_of(GI), GI);
    }

    #[test]
    fn growing_keeps_the_data_and_adds_inodes() {
        let before = measure(GI, 900 << 20);
        let after = measure(2 * GI, before.used_bytes);
        assert_eq!(after.used_bytes, before.used_bytes);
        assert_eq!(after.inodes_used, before.inodes_used);
        assert_eq!(after.inodes, 2 * before.inodes);
        assert_eq!(after.available_bytes, 2 * GI - (900 << 20));
    }

    #[test]
    fn fills_parse_from_text() {
        assert_eq!("85%".parse::<Fill>(), Ok(Fill::Percent(85.0)));
        assert_eq!("5Gi".parse::<Fill>(), Ok(Fill::Bytes(5 * GI)));
        assert_eq!("1000".parse::<Fill>(), Ok(Fill::Bytes(1000)));
        assert!("150%".parse::<Fill>().is_err());
        assert!("lots".parse::<Fill>().is_err());
        assert_eq!(Fill::Percent(50.0).used_of(3), 2);
    }
}
