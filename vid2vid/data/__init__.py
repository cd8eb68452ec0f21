"""Data: frame sequences and videos, paired and labelled images, preprocessing,
generated demo data, label/edge/pose inputs, and the preparation and checking tools."""
