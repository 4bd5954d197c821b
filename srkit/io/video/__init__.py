"""Video decode and encode with PyAV, the only place in srkit that decodes or encodes video.

One job per module; callers import each name from the module that owns it:
`probe` (what an input holds: `VideoInfo`), `timestamps` (repair, trim windows, timecode and chapter shifts),
`demux` (packets without decoding: keyframe seeks, packet times, the copied streams), `reader` (RGB frames in
presentation order), `output` (codec and container choices: `OutputPlan`), `writer` (RGB frames and copied
packets into a file published only when complete), `colour` (FFmpeg's colour tags and swscale flags) and
`errors`.
"""
