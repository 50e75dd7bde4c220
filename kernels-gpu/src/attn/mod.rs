//! Attention index math shared by the kernels and host tests: the tile
//! table, the order of a persistent grid's tiles, which key blocks a query
//! block visits (and which query blocks a key block is visited by), and
//! which scores are masked. Pure integer arithmetic, unit-tested on the CPU
//! against brute force.

pub mod blocks;
pub mod mask;
pub mod tile_order;
pub mod tiles;
