//! Memory the kernel reads and writes for the io_uring engine, bounded and allocated once per
//! relay thread: the provided-buffer ring the multishot receives fill (`BufRing`), and the
//! slots a round's sends are read from until they complete (`SendSlots`); plus socket addresses
//! in the kernel's layout.

use std::alloc::{self, Layout};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

use super::super::pump::MAX_DATAGRAM;

/// The buffer group the receives select from (one ring, one group).
pub(super) const BUFFER_GROUP: u16 = 0;
/// Room for a `sockaddr_in6`, the larger of the two families (what a receive's name takes in
/// its buffer, and a send's destination).
pub(super) const SOCKADDR_LEN: usize = 28;
/// A send slot's data: the longest datagram a pump hands, plus an SRTP tag and MKI.
const SLOT_DATA: usize = MAX_DATAGRAM + 64;

/// Provided buffers in a ring the kernel takes them from (`IORING_REGISTER_PBUF_RING`): each
/// multishot receive completion carries the id of the buffer it filled, given back
/// (`recycle`) once the datagram was handled, and made visible to the kernel by `publish`.
pub(super) struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    data: NonNull<u8>,
    data_layout: Layout,
    entries: u16,
    buf_len: usize,
    /// Our tail, published by `publish`.
    tail: u16,
}

impl BufRing {
    /// `entries` (a power of two) buffers of `buf_len` bytes each, registered with the ring as
    /// `BUFFER_GROUP`, all provided.
    pub(super) fn new(
        submitter: &Submitter<'_>,
        entries: u16,
        buf_len: usize,
    ) -> io::Result<BufRing> {
        if !entries.is_power_of_two() {
            return Err(io::Error::other("buffer ring size not a power of two"));
        }
        let ring_layout = Layout::from_size_align(
            usize::from(entries) * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .map_err(io::Error::other)?;
        let data_layout = Layout::from_size_align(usize::from(entries) * buf_len, 64)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size (entries ≥ 1, buf_len > 0 by the caller).
        let (ring, data) = unsafe { (alloc::alloc_zeroed(ring_layout), alloc::alloc(data_layout)) };
        let (Some(ring), Some(data)) = (
            NonNull::new(ring.cast::<BufRingEntry>()),
            NonNull::new(data),
        ) else {
            // SAFETY: whichever was allocated, with its layout.
            unsafe {
                if !ring.is_null() {
                    alloc::dealloc(ring, ring_layout);
                }
                if !data.is_null() {
                    alloc::dealloc(data, data_layout);
                }
            }
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        let mut bufs = BufRing {
            ring,
            ring_layout,
            data,
            data_layout,
            entries,
            buf_len,
            tail: 0,
        };
        // SAFETY: the ring memory is page-aligned, zeroed, `entries` long and lives as long as
        // `bufs`, which the worker drops only after the ring (`uring::Worker`'s field order).
        unsafe {
            submitter.register_buf_ring_with_flags(
                ring.as_ptr() as u64,
                entries,
                BUFFER_GROUP,
                0,
            )?;
        }
        for bid in 0..entries {
            bufs.recycle(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// The first `len` bytes of buffer `bid`, which a completion said the kernel filled; `None`
    /// for an id that is not ours.
    pub(super) fn filled(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.entries {
            return None;
        }
        // SAFETY: bid < entries, so the buffer lies in the data allocation; the kernel wrote it
        // before posting the completion and takes it again only after `recycle` + `publish`.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.data.as_ptr().add(usize::from(bid) * self.buf_len),
                len.min(self.buf_len),
            )
        })
    }

    /// Gives buffer `bid` back to the kernel (seen at the next `publish`).
    pub(super) fn recycle(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let slot = usize::from(self.tail & (self.entries - 1));
        // SAFETY: slot < entries; the kernel reads entries only up to the published tail, and
        // this one is past it. Only addr, len and bid are written (entry 0's `resv` is the tail).
        unsafe {
            let entry = &mut *self.ring.as_ptr().add(slot);
            entry.set_addr(self.data.as_ptr().add(usize::from(bid) * self.buf_len) as u64);
            entry.set_len(self.buf_len as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the recycled buffers visible to the kernel.
    pub(super) fn publish(&self) {
        // SAFETY: the tail lies in entry 0 (`BufRingEntry::tail`), 2-byte aligned in our
        // allocation; the kernel reads it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.as_ptr()).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring that used them is gone.
        unsafe {
            alloc::dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            alloc::dealloc(self.data.as_ptr(), self.data_layout);
        }
    }
}

/// What a send was, for its completion: whose, how long, and whether it is the datagram whose
/// fate the gateway's counters take from its completion.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendMeta {
    /// `id << 2 | pump`.
    pub(super) owner: u64,
    pub(super) bytes: u32,
    /// `Some(rtp)`: count it relayed (or send-failed) at completion.
    pub(super) counted: Option<bool>,
}

/// One send's memory, read by the kernel until the send completes.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Slot {
    data: [u8; SLOT_DATA],
    addr: [u8; SOCKADDR_LEN],
    addr_len: u32,
    meta: SendMeta,
}

/// A fixed set of send slots and the ones free.
pub(super) struct SendSlots {
    slots: Box<[Slot]>,
    free: Vec<u16>,
}

/// A slot taken for a send: where the kernel reads it.
pub(super) struct Taken {
    pub(super) slot: u16,
    pub(super) data: *const u8,
    pub(super) len: u32,
    pub(super) addr: *const libc::sockaddr,
    pub(super) addr_len: libc::socklen_t,
}

impl SendSlots {
    pub(super) fn new(count: u16) -> SendSlots {
        let empty = Slot {
            data: [0; SLOT_DATA],
            addr: [0; SOCKADDR_LEN],
            addr_len: 0,
            meta: SendMeta {
                owner: 0,
                bytes: 0,
                counted: None,
            },
        };
        SendSlots {
            slots: vec![empty; usize::from(count)].into_boxed_slice(),
            free: (0..count).rev().collect(),
        }
    }

    /// A free slot holding a copy of `data` for `dest`; `None` when all are in flight or the
    /// datagram is too long.
    pub(super) fn take(&mut self, data: &[u8], dest: SocketAddr, owner: u64) -> Option<Taken> {
        if data.len() > SLOT_DATA {
            return None;
        }
        let index = self.free.pop()?;
        let slot = &mut self.slots[usize::from(index)];
        slot.data[..data.len()].copy_from_slice(data);
        slot.addr_len = encode_sockaddr(dest, &mut slot.addr);
        slot.meta = SendMeta {
            owner,
            bytes: data.len() as u32,
            counted: None,
        };
        Some(Taken {
            slot: index,
            data: slot.data.as_ptr(),
            len: data.len() as u32,
            addr: slot.addr.as_ptr().cast(),
            addr_len: slot.addr_len,
        })
    }

    /// Marks slot `index`'s send as the one the counters take the datagram's fate from.
    pub(super) fn count_at_completion(&mut self, index: u16, rtp: bool) {
        if let Some(slot) = self.slots.get_mut(usize::from(index)) {
            slot.meta.counted = Some(rtp);
        }
    }

    /// Slot `index`'s send completed: the slot is free again; what it was.
    pub(super) fn release(&mut self, index: u16) -> Option<SendMeta> {
        let slot = self.slots.get(usize::from(index))?;
        self.free.push(index);
        Some(slot.meta)
    }
}

/// `dest` as a `sockaddr_in` or `sockaddr_in6`, in `out`; its length.
fn encode_sockaddr(dest: SocketAddr, out: &mut [u8; SOCKADDR_LEN]) -> u32 {
    *out = [0; SOCKADDR_LEN];
    match dest {
        SocketAddr::V4(a) => {
            out[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>() as u32
        }
        SocketAddr::V6(a) => {
            out[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            out[8..24].copy_from_slice(&a.ip().octets());
            out[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            std::mem::size_of::<libc::sockaddr_in6>() as u32
        }
    }
}

/// The source address a receive wrote (`sockaddr_in` or `sockaddr_in6`, `len` bytes of it).
pub(super) fn decode_sockaddr(name: &[u8], len: usize) -> Option<SocketAddr> {
    let name = name.get(..len)?;
    let family = u16::from_ne_bytes([*name.first()?, *name.get(1)?]);
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    if i32::from(family) == libc::AF_INET {
        if len < std::mem::size_of::<libc::sockaddr_in>() {
            return None;
        }
        let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
        return Some(SocketAddrV4::new(Ipv4Addr::from(ip), port).into());
    }
    if i32::from(family) == libc::AF_INET6 {
        let flow: [u8; 4] = name.get(4..8)?.try_into().ok()?;
        let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
        let scope: [u8; 4] = name.get(24..28)?.try_into().ok()?;
        return Some(
            SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                u32::from_be_bytes(flow),
                u32::from_ne_bytes(scope),
            )
            .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_go_to_the_kernel_layout_and_back() {
        let v4: SocketAddr = "192.0.2.7:40002".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::5%3]:5004".parse().unwrap();
        for addr in [v4, v6] {
            let mut raw = [0u8; SOCKADDR_LEN];
            let len = encode_sockaddr(addr, &mut raw) as usize;
            assert_eq!(decode_sockaddr(&raw, len), Some(addr));
            assert_eq!(
                decode_sockaddr(&raw, len - 1),
                None,
                "a cut name is refused"
            );
        }
        let mut raw = [0u8; SOCKADDR_LEN];
        encode_sockaddr(v4, &mut raw);
        raw[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(decode_sockaddr(&raw, 16), None, "another family is refused");
    }

    #[test]
    fn send_slots_are_bounded_and_come_back() {
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut slots = SendSlots::new(2);
        let a = slots.take(&[1; 172], dest, 5).unwrap();
        let b = slots.take(&[2; 20], dest, 6).unwrap();
        assert!(slots.take(&[3; 20], dest, 7).is_none(), "all in flight");
        assert!(slots.take(&[0; SLOT_DATA + 1], dest, 7).is_none());
        slots.count_at_completion(b.slot, true);
        let meta = slots.release(b.slot).unwrap();
        assert_eq!((meta.owner, meta.bytes, meta.counted), (6, 20, Some(true)));
        let c = slots.take(&[4; 30], dest, 8).unwrap();
        assert_eq!(c.slot, b.slot, "a released slot is reused");
        assert_eq!(slots.release(a.slot).unwrap().counted, None);
        assert!(slots.release(9).is_none());
    }
}
