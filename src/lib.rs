//! station: a warehouse print-and-dispatch program. See ARCHITECTURE.md for the map.

pub mod cli;
pub mod config;
pub mod courier;
pub mod crash;
pub mod error;
pub mod handover;
pub mod intake;
pub mod order;
pub mod outbox;
pub mod packing;
pub mod parcel;
pub mod picking;
pub mod printer;
pub mod pull;
pub mod render;
pub mod report;
pub mod retention;
pub mod returns;
pub mod scale;
pub mod scancode;
pub mod serve;
pub mod shop;
pub mod show;
pub mod store;
pub mod wave;
