//! The harness's one source of randomness: SplitMix64 from the seed, so a run's schedule is the
//! same for the same seed on every machine.

use std::time::Duration;

/// SplitMix64 (Steele, Lea and Flood), stable across versions and platforms.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// An independent stream for one part of the schedule: the same seed and `stream` give the
    /// same draws whatever the other streams drew.
    pub fn stream(seed: u64, stream: u64) -> SplitMix {
        let mut mixer = SplitMix(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        SplitMix(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // The modulo bias is below 2^-40 for the small ranges used here.
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(self.between(lo_ms, hi_ms))
    }

    /// One element of `items` (`None` when empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let n = u64::try_from(items.len()).ok()?;
        items.get(usize::try_from(self.below(n)).ok()?)
    }

    /// Up to `n` distinct elements of `items`, in a seeded order.
    pub fn sample<T: Clone>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut pool: Vec<T> = items.to_vec();
        let mut out = Vec::with_capacity(n.min(pool.len()));
        while out.len() < n && !pool.is_empty() {
            let i = self.below(pool.len() as u64) as usize;
            out.push(pool.swap_remove(i));
        }
        out
    }

    /// `items` in a seeded order.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_streams_are_independent() {
        let draws = |seed, stream| {
            let mut r = SplitMix::stream(seed, stream);
            (0..50).map(|_| r.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draws(7, 1), draws(7, 1));
        assert_ne!(draws(7, 1), draws(7, 2));
        assert_ne!(draws(7, 1), draws(8, 1));
    }

    #[test]
    fn ranges_hold() {
        let mut r = SplitMix::new(3);
        for _ in 0..10_000 {
            let x = r.between(5, 9);
            assert!((5..=9).contains(&x), "{x}");
            let u = r.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
        assert_eq!(r.between(4, 4), 4);
        assert_eq!(r.below(0), 0);
        let s = r.sample(&[1, 2, 3, 4, 5], 3);
        assert_eq!(s.len(), 3);
        let distinct: std::collections::BTreeSet<_> = s.iter().collect();
        assert_eq!(distinct.len(), 3);
        assert_eq!(r.sample(&[1, 2], 5).len(), 2);
    }
}
