//! `--shard I/N`: deterministic partitioning of files or records across independent
//! processes (Slurm array tasks, Kubernetes Indexed Jobs) with no coordinator.
//!
//! A name belongs to shard `h(name) mod N`, where `h` is the first 8 bytes (big-endian)
//! of the SHA-256 of the name's UTF-8 bytes. SHA-256 rather than `std`'s hasher because
//! the assignment must never change between physio versions, platforms or runs.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's shard, in `0..count`.
    pub index: u32,
    /// Total number of shards, at least 1.
    pub count: u32,
}

/// An `I/N` string that is not a valid shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shard {given:?}: expected I/N with 0 <= I < N, e.g. 0/4")]
pub struct ShardParseError {
    /// The string as given.
    pub given: String,
}

impl Shard {
    /// The single shard that holds everything.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The shard `name` is assigned to, out of `count`.
    pub fn of(name: &str, count: u32) -> u32 {
        let digest = Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
    }

    /// True when `name` belongs to this shard.
    pub fn contains(&self, name: &str) -> bool {
        self.count <= 1 || Shard::of(name, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = ShardParseError;

    /// Parses `I/N`.
    ///
    /// ```
    /// use physio::shard::Shard;
    /// let s: Shard = "1/4".parse().unwrap();
    /// assert_eq!((s.index, s.count), (1, 4));
    /// assert!("4/4".parse::<Shard>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ShardParseError {
            given: s.to_string(),
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(err)?;
        let index: u32 = i.trim().parse().map_err(|_| err())?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::ALL);
        assert_eq!(
            " 3 / 8 ".parse::<Shard>().unwrap(),
            Shard { index: 3, count: 8 }
        );
        for bad in ["", "1", "1/0", "2/2", "-1/2", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_name_lands_in_exactly_one_shard() {
        let names: Vec<String> = (0..1000).map(|i| format!("records100/{i:05}_lr")).collect();
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut sizes = [0usize; 4];
        for name in &names {
            let owners: Vec<_> = shards.iter().filter(|s| s.contains(name)).collect();
            assert_eq!(owners.len(), 1, "{name}");
            sizes[owners[0].index as usize] += 1;
        }
        // A reasonable hash spreads 1000 names roughly evenly.
        assert!(sizes.iter().all(|&n| (180..=320).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn assignment_is_stable() {
        // Pinned values: changing the hash would reshuffle users' existing shard outputs.
        assert_eq!(Shard::of("100", 4), Shard::of("100", 4));
        let pinned: Vec<u32> = ["100", "a103l", "records100/00000/00001_lr"]
            .iter()
            .map(|n| Shard::of(n, 1000))
            .collect();
        assert_eq!(pinned, PINNED);
    }

    // Computed independently: int.from_bytes(sha256(name)[:8], "big") % 1000 in Python.
    const PINNED: [u32; 3] = [397, 615, 235];
}
