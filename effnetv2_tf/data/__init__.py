"""Input pipeline: sources (TFRecords, TFDS, image folders), preprocessing, augmentation, mixing."""
