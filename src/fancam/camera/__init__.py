"""Pass B: the camera path of one performer and the render of the fancam."""
