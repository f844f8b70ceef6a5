"""Backbones: feature extractors returning a list of feature maps, shallow to deep."""
