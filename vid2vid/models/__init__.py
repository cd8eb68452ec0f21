"""Networks and losses of pix2pix, pix2pixHD and vid2vid, built from shared blocks."""
