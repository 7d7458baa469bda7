//! `station perf wave|scan|sync`: measurements that print figures (medians of
//! several runs), kept out of the timed tests. `bench` / `bench-scan` are the
//! old names, hidden, for one release.

pub mod scan;
pub mod sync;
pub mod wave;
