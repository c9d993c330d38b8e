"""Operations on predictions: the scheduler, futures, downloads, uploads."""
