# proxy: see Makefile.am for the variables fragments add to.
