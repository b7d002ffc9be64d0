//! Reads the real Fashion-MNIST installed by Debian's `dataset-fashion-mnist` (CI installs it).

use std::path::Path;

use greenlab_data::{DEFAULT_FASHION_MNIST_DIR, DatasetKind, load};

#[test]
fn real_fashion_mnist_has_the_published_shape() {
    let split = load(
        DatasetKind::FashionMnist,
        Path::new(DEFAULT_FASHION_MNIST_DIR),
    )
    .unwrap_or_else(|e| {
        panic!("{e}\n(install the data with `apt-get install dataset-fashion-mnist`)")
    });
    assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
    assert_eq!(
        (split.train.channels, split.train.height, split.train.width),
        (1, 28, 28)
    );
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    for (set, per_class) in [(&split.train, 6_000), (&split.test, 1_000)] {
        let mut counts = [0usize; 10];
        for &l in &set.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [per_class; 10]);
    }
    let max = split.train.images.iter().copied().fold(0.0f32, f32::max);
    assert!(
        max <= 1.0 && max > 0.99,
        "pixels are scaled to [0, 1], max {max}"
    );
}
