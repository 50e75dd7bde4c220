//! What the host needs to know about a kernel, and the macro that declares one.

/// Launch facts of one kernel entry, as the builder and the host see them.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct KernelSpec {
    /// The `.entry` name in the PTX module.
    pub entry: &'static str,
    /// Written into the PTX as `.maxntid N, 1, 1`. It gives ptxas the register
    /// cap at entry that `setmaxnreg` needs (hopper-notes.md, section 2), and
    /// the host refuses launches with more threads per block.
    pub max_threads_per_block: u32,
    /// Written into the PTX as `.minnctapersm N`.
    pub min_blocks_per_sm: u32,
}

/// A parameter block passed by value to a kernel entry.
///
/// # Safety
/// Implementors are `#[repr(C)]`, `Copy`, have an alignment of at most 16
/// (larger alignments crash rustc's nvptx64 call lowering, hopper-notes.md
/// section 3), and hold device addresses only as [`super::GlobalPtr`].
pub unsafe trait KernelParams: Copy {}

/// A kernel entry of the PTX module, known to the host by its type.
pub trait Kernel {
    /// What the kernel takes by value.
    type Params: KernelParams;
    /// Entry name and launch bounds.
    const SPEC: KernelSpec;
}

/// Declares kernels: one host marker type and one device entry each.
///
/// ```text
/// forward {
///     Marker: entry = (Elem, TILING, Schedule);
/// }
/// backward {
///     Marker: entry = (Elem, BWD_TILING);
/// }
/// Marker: entry(Params) [max threads per block, min blocks per SM] => body;
/// ```
///
/// A forward row names its element type (`arch::elem` on the device,
/// `abi::fwd::FwdElem` on the host), its tiling (a row of `attn::tiles`) and
/// its schedule (`abi::fwd::Schedule`); from those the row's device body (the
/// const generics of `fwd::run`, derived here and nowhere else) and its
/// `FWD_KERNELS` entry (what the host picks a kernel by) are generated. A
/// backward row does the same for `bwd::run` and `BWD_KERNELS`.
///
/// The device entry is generated here (and only on nvptx64) so that its name,
/// its parameter type and its launch bounds cannot drift from what the host
/// launches with.
macro_rules! kernel_table {
    (
        forward {$(
            $(#[$fdoc:meta])*
            $fname:ident : $fentry:ident = ($elem:ident, $tiling:ident, $schedule:ident);
        )*}
        backward {$(
            $(#[$bdoc:meta])*
            $bname:ident : $bentry:ident = ($belem:ident, $btiling:ident);
        )*}
        $($rest:tt)*
    ) => {
        $crate::abi::kernel::kernel_table! {
            @kernels
            $(
                $(#[$bdoc])*
                // 384 threads: one producer and two consumer warpgroups; one
                // CTA per SM (persistent grid).
                $bname : $bentry ($crate::abi::bwd::BwdParams) [384, 1] => $crate::bwd::run::<
                    $crate::arch::elem::$belem,
                    { $crate::attn::tiles::$btiling.head_dim },
                    { $crate::attn::tiles::$btiling.block_m },
                    { $crate::attn::tiles::$btiling.block_n() },
                    { $crate::attn::tiles::$btiling.stages as usize },
                    { ($crate::attn::tiles::$btiling.head_dim / 2) as usize },
                    { ($crate::attn::tiles::$btiling.block_m / 2) as usize },
                    { ($crate::attn::tiles::$btiling.block_m / 16) as usize },
                >;
            )*
            $(
                $(#[$fdoc])*
                // 384 threads: one producer and two consumer warpgroups; one
                // CTA per SM (persistent grid, ~200 KiB of shared memory).
                $fname : $fentry ($crate::abi::fwd::FwdParams) [384, 1] => $crate::fwd::run::<
                    $crate::arch::elem::$elem,
                    { $crate::attn::tiles::$tiling.head_dim },
                    { $crate::attn::tiles::$tiling.block_n },
                    { $crate::attn::tiles::$tiling.stages as usize },
                    { ($crate::attn::tiles::$tiling.block_n / 2) as usize },
                    { ($crate::attn::tiles::$tiling.head_dim / 2) as usize },
                    { ($crate::attn::tiles::$tiling.block_n
                        / <$crate::arch::elem::$elem as $crate::fwd::FwdInput>::P_KEYS) as usize },
                    { $crate::abi::fwd::Schedule::$schedule.pingpong() },
                    { $crate::abi::fwd::Schedule::$schedule.overlap() },
                >;
            )*
            $($rest)*
        }

        /// Every backward main kernel, as the host chooses among them.
        pub const BWD_KERNELS: &[$crate::abi::bwd::BwdKernel] = &[$(
            $crate::abi::bwd::BwdKernel {
                elem: $crate::abi::fwd::FwdElem::$belem,
                tiling: $crate::attn::tiles::$btiling,
                spec: <$bname as $crate::abi::Kernel>::SPEC,
            },
        )*];

        /// Every forward kernel, as the host chooses among them.
        pub const FWD_KERNELS: &[$crate::abi::fwd::FwdKernel] = &[$(
            $crate::abi::fwd::FwdKernel {
                elem: $crate::abi::fwd::FwdElem::$elem,
                tiling: $crate::attn::tiles::$tiling,
                schedule: $crate::abi::fwd::Schedule::$schedule,
                spec: <$fname as $crate::abi::Kernel>::SPEC,
            },
        )*];
    };
    (@kernels $(
        $(#[$doc:meta])*
        $name:ident : $entry:ident ($params:ty) [$threads:literal, $blocks:literal] => $body:path;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy)]
            #[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
            pub struct $name;

            impl $crate::abi::Kernel for $name {
                type Params = $params;
                const SPEC: $crate::abi::KernelSpec = $crate::abi::KernelSpec {
                    entry: stringify!($entry),
                    max_threads_per_block: $threads,
                    min_blocks_per_sm: $blocks,
                };
            }

            #[cfg(target_arch = "nvptx64")]
            #[unsafe(no_mangle)]
            /// # Safety
            /// Launched by the host library only, with the parameter block and
            /// launch shape its safe wrapper checked.
            pub unsafe extern "ptx-kernel" fn $entry(params: $params) {
                // SAFETY: the host upholds the kernel's contract (see `body`).
                unsafe { $body(params) }
            }
        )*

        /// Every kernel of the module, in declaration order.
        pub const KERNELS: &[$crate::abi::KernelSpec] =
            &[$(<$name as $crate::abi::Kernel>::SPEC),*];
    };
}
pub(crate) use kernel_table;
