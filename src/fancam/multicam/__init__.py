"""Several angles of one performance -> one fancam cut from the best angle per moment.

``align`` finds each video's time offset (and clock drift) from its sound, ``angles`` analyses every
angle and finds the chosen performer in each, ``choose`` scores the angles per moment and decides the
edit (cuts on beats, a minimum shot length, no cut mid-jump), ``edit`` renders the edit from several
sources with one audio track and writes the edit decision list and a timeline picture.
"""
