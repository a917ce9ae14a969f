// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken: a stablecoin stand-in for tests (anyone may mint).
contract TestToken is ERC20 {
    constructor() ERC20("Test USD", "tUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// Accounts the token refuses to pay or be paid by, as a stablecoin's blacklist does.
    mapping(address => bool) public blocked;

    function setBlocked(address who, bool isBlocked) external {
        blocked[who] = isBlocked;
    }

    /// Whether every transfer burns all the gas it is given (a hostile token).
    bool public gasBurner;

    function setGasBurner(bool burns) external {
        gasBurner = burns;
    }

    function _update(address from, address to, uint256 value) internal override {
        require(!blocked[from] && !blocked[to], "blocked");
        if (gasBurner) {
            while (true) {}
        }
        super._update(from, to, value);
    }
}

/// @title AlwaysReverts: a "verifier" that rejects everything (a registration no proof can pay).
contract AlwaysReverts {
    fallback() external {
        revert();
    }
}

/// @title AlwaysAccepts: a "verifier" that accepts everything (a registration a customer must not trust).
contract AlwaysAccepts {
    fallback() external {}
}
