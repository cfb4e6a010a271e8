//! What a release does to other records, as reactors.
