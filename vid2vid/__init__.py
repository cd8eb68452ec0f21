"""vid2vid: video-to-video synthesis in PyTorch."""
