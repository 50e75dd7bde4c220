//! The persistent tile scheduler (FA3's dynamic one), for every persistent
//! kernel: CTA `b` starts with tile `b` of the launch's order; the producer
//! claims every further tile from a global counter, so an SM that finishes
//! early takes the next tile in the order (longest causal tiles first, as a
//! hardware-scheduled grid would). The producer passes each tile to the
//! consumers through a two-slot ring in shared memory, ending with a tile
//! past the last. What a tile is, and how many there are, is the kernel's
//! ([`Tiles`]).

use crate::abi::GlobalPtr;
use crate::arch::global::fetch_add_gpu;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::smem;
use crate::arch::thread::{Elected, block_index, grid_size_unhoisted};

/// Slots in the feed (`attn::tiles::FEED_SLOTS`, where the layout reserves
/// them).
const SLOTS: usize = crate::attn::tiles::FEED_SLOTS as usize;
/// Every consumer thread frees a slot after reading it: the two consumer
/// warpgroups, plus any other threads that follow the tiles
/// ([`TileFeed::init`]).
const CONSUMER_THREADS: u32 = 256;

/// A launch's tiles, as a kernel defines them.
pub(crate) trait Tiles {
    /// What a CTA needs to know to work on one tile.
    type Work;
    /// Tiles in the launch.
    fn count(&self) -> u32;
    /// The work of tile `tile` (`tile < count()`).
    fn work(&self, tile: u32) -> Self::Work;
    /// The claim counter: a claim that reads `c` takes tile `grid + c -
    /// claim_base()` (wrapping); each launch makes exactly `count()` claims.
    fn claim_counter(&self) -> GlobalPtr<u32>;
    /// The counter's value when the launch began.
    fn claim_base(&self) -> u32;
}

/// Tile indices on their way from the producer to the consumers.
pub(crate) struct TileFeed {
    ring: TmaPipeline<SLOTS>,
    slots: u32,
}

impl TileFeed {
    /// Shared bytes of the ring's barriers (the slots are extra).
    pub const BARRIER_BYTES: u32 = TmaPipeline::<SLOTS>::BYTES;

    /// # Safety
    /// `barriers` (8-byte aligned, `BARRIER_BYTES`) and `slots` (4-byte
    /// aligned, 8 bytes) are reserved for the feed.
    #[inline(always)]
    pub unsafe fn at(barriers: u32, slots: u32) -> Self {
        // SAFETY: per the contract.
        let ring = unsafe { TmaPipeline::at(barriers) };
        Self { ring, slots }
    }

    /// One thread, before any use; a block barrier must follow. Read by the
    /// consumer warpgroups and `other_readers` more threads (each through
    /// its own [`ConsumerTiles`]).
    #[inline(always)]
    pub fn init(&self, one: &Elected, other_readers: u32) {
        self.ring.init(one, CONSUMER_THREADS + other_readers);
    }

    #[inline(always)]
    fn slot(&self, state: PipelineState<SLOTS>) -> u32 {
        self.slots + 4 * state.index()
    }
}

/// The producer's tiles: claims each one only once the previous tile's
/// loads are all issued (a few blocks before the consumers finish it), so a
/// CTA busy with a long tile does not hold the next one back from an SM
/// that is free (claiming at the start of each tile instead measured 7%
/// slower at hdim 256, causal, 8k); then publishes it to the consumers.
pub(crate) struct ProducerTiles<'a, T> {
    tiles: T,
    feed: &'a TileFeed,
    state: PipelineState<SLOTS>,
    /// The first tile is `block_index()`; every later one is claimed.
    first: bool,
}

impl<'a, T: Tiles> ProducerTiles<'a, T> {
    /// For the one producer thread (the feed has one writer).
    #[inline(always)]
    pub fn new(_one: &Elected, tiles: T, feed: &'a TileFeed) -> Self {
        Self {
            tiles,
            feed,
            state: PipelineState::producer(),
            first: true,
        }
    }
}

impl<T: Tiles> Iterator for ProducerTiles<'_, T> {
    type Item = T::Work;

    #[inline(always)]
    fn next(&mut self) -> Option<T::Work> {
        let tile = if self.first {
            self.first = false;
            block_index()
        } else {
            // SAFETY: the host passes a live, 4-byte aligned counter that
            // only the producers of this grid touch while it runs, and only
            // atomically (`Tiles::claim_counter`).
            let claimed = unsafe { fetch_add_gpu(self.tiles.claim_counter(), 1) };
            // The grid size read here, not held through the tile loop (the
            // backward's producer has 24 registers).
            grid_size_unhoisted() + claimed.wrapping_sub(self.tiles.claim_base())
        };
        self.feed.ring.producer_acquire(self.state);
        // SAFETY: the slot is free (acquired) and only this thread writes it.
        unsafe { smem::store_u32(self.feed.slot(self.state), tile) };
        self.feed.ring.producer_commit(self.state);
        self.state.advance();
        if tile >= self.tiles.count() {
            return None;
        }
        Some(self.tiles.work(tile))
    }
}

/// A consumer warpgroup's tiles, as the producer publishes them:
/// `current` until `advance` reads the next one. Call `advance` last in
/// the tile loop's body: the loop then has one back edge, which ptxas needs
/// to keep the consumers' setmaxnreg budget (kernels-gpu/README.md).
pub(crate) struct ConsumerTiles<'a, T> {
    tiles: T,
    feed: &'a TileFeed,
    state: PipelineState<SLOTS>,
    tile: u32,
}

impl<'a, T: Tiles> ConsumerTiles<'a, T> {
    #[inline(always)]
    pub fn new(tiles: T, feed: &'a TileFeed) -> Self {
        let mut consumer = Self {
            tiles,
            feed,
            state: PipelineState::consumer(),
            tile: 0,
        };
        consumer.advance();
        consumer
    }

    /// The tile to work on; `None` once the producer has run out.
    #[inline(always)]
    pub fn current(&self) -> Option<T::Work> {
        (self.tile < self.tiles.count()).then(|| self.tiles.work(self.tile))
    }

    /// Waits for the producer's next tile.
    #[inline(always)]
    pub fn advance(&mut self) {
        self.feed.ring.consumer_wait(self.state);
        // SAFETY: the slot holds a published tile (waited for); the producer
        // does not rewrite it before every consumer thread has released it.
        self.tile = unsafe { smem::load_u32(self.feed.slot(self.state)) };
        self.feed.ring.consumer_release(self.state);
        self.state.advance();
    }
}
