//! placeholder while the skeleton settles
