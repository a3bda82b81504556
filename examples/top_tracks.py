"""Print the top tracks for a mood: a five-line sync script with the blocking `Client`.

AUDIOSCAPE_BASE_URL=... AUDIOSCAPE_API_KEY=... python examples/top_tracks.py "chill lo-fi beats"
"""

import sys

from audioscape_async import Client

mood = sys.argv[1] if len(sys.argv) > 1 else "chill lo-fi beats"
with Client() as client:
    page = client.search(mood, limit=5)
for rank, track in enumerate(page.tracks, start=1):
    print(f"{rank}. {track.name} by {track.artist} ({track.genre}, {track.bpm:g} bpm)")
print(f"{page.meta.total} tracks matched ({page.meta.search_method} search)")
