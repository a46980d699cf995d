"""Alert coverage across drills: which detection source caught which fault, how fast, why the
others missed, and which rule would have caught it (proven on the drills' own data)."""
