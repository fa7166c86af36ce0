//! The Merkle tree of a manifest's entries, as RFC 6962 (§2.1) defines it: a leaf's hash is
//! `SHA-256(0x00 || leaf bytes)`, an inner node's `SHA-256(0x01 || left || right)` (the prefixes
//! keep a leaf from ever passing for a node), the tree over `n` leaves splits at the largest
//! power of two below `n`, and the empty tree's root is `SHA-256("")`. An inclusion proof is the
//! RFC's audit path; it is checked as RFC 9162 §2.1.3.2 says, so any RFC 6962 tool agrees.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// A leaf's hash.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over `leaves` (leaf hashes, in order).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` (None when out of range): the sibling hashes from the leaf up.
pub fn path(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    walk(index, leaves, &mut out);
    Some(out)
}

fn walk(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if m < k {
        walk(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        walk(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// Whether `leaf` is leaf `index` of a tree of `size` leaves with root `root`, by `path`.
pub fn verify(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn the_root_is_rfc_6962s() {
        // RFC 6962's empty tree, and a tree of three built by hand.
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let l = leaves(3);
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(root(&l[..1]), l[0]);
        // A leaf is never a node: the prefixes differ.
        assert_ne!(leaf_hash(&[l[0], l[1]].concat()), node_hash(&l[0], &l[1]));
    }

    #[test]
    fn every_leaf_of_every_size_proves_and_nothing_else_does() {
        for n in 1..=17 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = path(i, &l).unwrap();
                assert!(verify(i as u64, n as u64, &l[i], &p, &r), "{i} of {n}");
                // Another leaf, another place, another size or a cut path fails.
                let other = leaf_hash(b"other");
                assert!(!verify(i as u64, n as u64, &other, &p, &r), "{i} of {n}");
                if n > 1 {
                    assert!(!verify(((i + 1) % n) as u64, n as u64, &l[i], &p, &r));
                    assert!(!verify(i as u64, n as u64, &l[i], &p[..p.len() - 1], &r));
                }
            }
            assert!(path(n, &l).is_none());
        }
    }
}
