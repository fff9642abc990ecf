// Every connection the process accepts passes through here (http/accepted.cpp), whichever
// library accepts it.
#pragma once

namespace uas {

// The socket the calling thread accepted last, once; -1 if it accepted none since it last asked.
// cpp-httplib's accepting thread accepts a connection and hands it to its task queue as a
// function, without saying which socket it serves.
int take_accepted();

} // namespace uas
