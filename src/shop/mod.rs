//! Everything that speaks HTTP to a shop: the Shop API v1 client, the project's own
//! simulator of the shop platform, and the seeded order generator that feeds it.

pub mod client;
pub mod generate;
pub mod sim;
