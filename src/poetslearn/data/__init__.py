"""Where images come from: CIFAR-10, folders of class sub-folders, their stable split, decoding,
distortions. A `Dataset` holds `Split`s whose `images` load batches of pixels on demand."""
