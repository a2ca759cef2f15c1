"""Where images come from. Public faces: `datasets.load_dataset` (a CSV file, a folder or CIFAR-10,
cut into stable splits) and `datasets.load_split_to_evaluate`; `sources` (`Dataset`, `Split` and
the image sources they hold, `calibration_images`); `images` (decoding and resizing);
`distortions`."""
